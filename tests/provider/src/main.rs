//! terraform-provider-tfenvtest: a tiny real Terraform provider for tfenv's end-to-end
//! tests (protocol 6, on the `tf-provider` crate). Its one resource, `tfenvtest_file`,
//! is a file on disk, so a test can change the real world behind Terraform's back:
//!
//! ```hcl
//! resource "tfenvtest_file" "f" {
//!   path    = "/abs/path/app.conf" # required; changing it replaces the resource
//!   content = "v1"                 # required
//!   secret  = "s3cr3t"             # optional, sensitive: written to "<path>.secret"
//! }                                # id (computed) = path
//! ```
//!
//! Read returns what is on disk: an edited file (or `.secret` file) is `update` drift,
//! a deleted file makes the resource vanish from state (`delete` drift). A relative
//! `path` is resolved against the provider's working directory, which is Terraform's
//! (the root module's folder, or the `-chdir` one); tests pass absolute paths.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::PathBuf;

use anyhow::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{
    Attribute, AttributeConstraint, AttributeType, Block, Description, Schema,
};
use tf_provider::value::{ValueEmpty, ValueString};
use tf_provider::{
    AttributePath, Diagnostics, DynamicDataSource, DynamicResource, Provider, Resource, map, serve,
};

/// `tfenvtest_file`'s attributes, as Terraform sends and stores them.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct FileState<'a> {
    #[serde(borrow = "'a")]
    id: ValueString<'a>,
    #[serde(borrow = "'a")]
    path: ValueString<'a>,
    #[serde(borrow = "'a")]
    content: ValueString<'a>,
    #[serde(borrow = "'a")]
    secret: ValueString<'a>,
}

impl FileState<'_> {
    fn path(&self) -> Option<PathBuf> {
        self.path.as_ref_option().map(|p| PathBuf::from(p.as_ref()))
    }
}

fn secret_path(path: &std::path::Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".secret");
    PathBuf::from(name)
}

/// The file's text: `Ok(None)` when it does not exist.
fn read_text(path: &std::path::Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

fn remove(path: &std::path::Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// Writes `content` to the path and the secret (when set) to `<path>.secret`, removing
/// a `.secret` file left from before when it is not. Errors go to `diags`.
fn write_files(diags: &mut Diagnostics, state: &FileState<'_>) -> Option<()> {
    let Some(path) = state.path() else {
        diags.root_error_short("tfenvtest_file: `path` is not known");
        return None;
    };
    let content = state.content.as_ref_option().map_or("", |c| c.as_ref());
    if let Err(err) = std::fs::write(&path, content) {
        diags.error(
            "cannot write the file",
            format!("`{}`: {err}", path.display()),
            AttributePath::new("path"),
        );
        return None;
    }
    let secret = secret_path(&path);
    let written = match state.secret.as_ref_option() {
        Some(value) => std::fs::write(&secret, value.as_bytes()),
        None => remove(&secret),
    };
    if let Err(err) = written {
        // The error names the file, never the sensitive value.
        diags.error(
            "cannot write the secret file",
            format!("`{}`: {err}", secret.display()),
            AttributePath::new("secret"),
        );
        return None;
    }
    Some(())
}

struct FileResource;

#[async_trait]
impl Resource for FileResource {
    type State<'a> = FileState<'a>;
    type PrivateState<'a> = ValueEmpty;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(Schema {
            version: 0,
            block: Block {
                version: 0,
                description: Description::plain("A file on disk, for tfenv's tests of drift"),
                attributes: map! {
                    "id" => Attribute {
                        attr_type: AttributeType::String,
                        description: Description::plain("The path"),
                        constraint: AttributeConstraint::Computed,
                        ..Default::default()
                    },
                    "path" => Attribute {
                        attr_type: AttributeType::String,
                        description: Description::plain(
                            "Where the file is (relative: to Terraform's working directory); \
                             changing it replaces the resource",
                        ),
                        constraint: AttributeConstraint::Required,
                        ..Default::default()
                    },
                    "content" => Attribute {
                        attr_type: AttributeType::String,
                        description: Description::plain("The file's text"),
                        constraint: AttributeConstraint::Required,
                        ..Default::default()
                    },
                    "secret" => Attribute {
                        attr_type: AttributeType::String,
                        description: Description::plain("Sensitive text kept in `<path>.secret`"),
                        constraint: AttributeConstraint::Optional,
                        sensitive: true,
                        ..Default::default()
                    },
                },
                ..Default::default()
            },
        })
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        state: Self::State<'a>,
        private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let Some(path) = state.path() else {
            return Some((state, private_state));
        };
        let content = match read_text(&path) {
            // Gone: Terraform drops the resource from state (a `delete` drift).
            Ok(None) => return None,
            Ok(Some(text)) => text,
            Err(err) => {
                diags.error(
                    "cannot read the file",
                    format!("`{}`: {err}", path.display()),
                    AttributePath::new("path"),
                );
                return Some((state, private_state));
            }
        };
        let secret = secret_path(&path);
        let secret = match read_text(&secret) {
            Ok(text) => text,
            Err(err) => {
                diags.error(
                    "cannot read the secret file",
                    format!("`{}`: {err}", secret.display()),
                    AttributePath::new("secret"),
                );
                return Some((state, private_state));
            }
        };
        let mut state = state;
        state.id = ValueString::from(Cow::Owned(path.to_string_lossy().into_owned()));
        state.content = ValueString::from(Cow::Owned(content));
        state.secret = match secret {
            Some(text) => ValueString::from(Cow::Owned(text)),
            None => ValueString::Null,
        };
        Some((state, private_state))
    }

    async fn plan_create<'a>(
        &self,
        _diags: &mut Diagnostics,
        proposed_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let mut state = proposed_state;
        state.id = state.path.clone();
        Some((state, Default::default()))
    }

    async fn plan_update<'a>(
        &self,
        _diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        proposed_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>, Vec<AttributePath>)> {
        let mut replace = Vec::new();
        if proposed_state.path != prior_state.path {
            replace.push(AttributePath::new("path"));
        }
        let mut state = proposed_state;
        state.id = state.path.clone();
        Some((state, prior_private_state, replace))
    }

    async fn plan_destroy<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<Self::PrivateState<'a>> {
        Some(prior_private_state)
    }

    async fn create<'a>(
        &self,
        diags: &mut Diagnostics,
        planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        write_files(diags, &planned_state)?;
        Some((planned_state, planned_private_state))
    }

    async fn update<'a>(
        &self,
        diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        write_files(diags, &planned_state)?;
        Some((planned_state, planned_private_state))
    }

    async fn destroy<'a>(
        &self,
        diags: &mut Diagnostics,
        state: Self::State<'a>,
        _private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<()> {
        let path = state.path()?;
        for file in [secret_path(&path), path] {
            if let Err(err) = remove(&file) {
                diags.error(
                    "cannot delete the file",
                    format!("`{}`: {err}", file.display()),
                    AttributePath::new("path"),
                );
                return None;
            }
        }
        Some(())
    }
}

struct TfenvTestProvider;

#[async_trait]
impl Provider for TfenvTestProvider {
    type Config<'a> = ValueEmpty;
    type MetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(Schema {
            version: 0,
            block: Block {
                description: Description::plain("tfenvtest: files on disk, for tfenv's tests"),
                ..Default::default()
            },
        })
    }

    async fn validate<'a>(
        &self,
        _diags: &mut Diagnostics,
        _config: Self::Config<'a>,
    ) -> Option<()> {
        Some(())
    }

    async fn configure<'a>(
        &self,
        _diags: &mut Diagnostics,
        _terraform_version: String,
        _config: Self::Config<'a>,
    ) -> Option<()> {
        Some(())
    }

    fn get_resources(
        &self,
        _diags: &mut Diagnostics,
    ) -> Option<HashMap<String, Box<dyn DynamicResource>>> {
        Some(map! { "file" => FileResource })
    }

    fn get_data_sources(
        &self,
        _diags: &mut Diagnostics,
    ) -> Option<HashMap<String, Box<dyn DynamicDataSource>>> {
        Some(map! {})
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    serve("tfenvtest", TfenvTestProvider).await
}
