//! A typed client for the Widgets reference API — and the template for your own typed SDK.
//!
//! The Widgets API (specified in `docs/widgets-api.md`, served by `authed::mock::MockApi`
//! under the `mock` feature) is a small CRUD API behind a bearer token. This module turns it
//! into methods that read like sentences:
//!
//! ```no_run
//! use futures_util::TryStreamExt;
//! use authed::widgets::{Color, NewWidget, WidgetPatch, WidgetsExt};
//!
//! # async fn run() -> authed::Result<()> {
//! let client = authed::Client::from_env()?;
//!
//! let me = client.me().await?;
//! println!("signed in as {} with scopes {:?}", me.name, me.scopes);
//!
//! let widgets = client.widgets();
//! let created = widgets.create(&NewWidget::new("sprocket", Color::Blue).weight_grams(250)).await?;
//! let fetched = widgets.get(created.id).await?;
//! let renamed = widgets.update(fetched.id, &WidgetPatch::new().name("sprocket v2")).await?;
//!
//! // Every blue widget, 50 per request, as one stream of items (at most 200 of them).
//! let blue: Vec<_> = widgets.list().color("blue").page_size(50).paginator().limit(200).stream().try_collect().await?;
//!
//! widgets.delete(renamed.id).await?;
//! # Ok(()) }
//! ```
//!
//! Every call goes through the client's send path: the token is obtained and renewed, a 401
//! is answered by one refresh and replay, and 429/503 answers are waited out as the client's
//! retry policy says. **`create` (`POST`) and `update` (`PATCH`) are not retried after a `502`,
//! `504`, a timeout or a lost connection**: the server may have acted on them already.
//!
//! # Errors
//!
//! The API answers errors with RFC 9457 `application/problem+json`; they arrive as
//! [`authed::Error`](crate::Error) with [`ErrorKind::Api`](crate::ErrorKind::Api), the status,
//! and the problem body in [`api_error()`](crate::Error::api_error):
//!
//! ```no_run
//! # async fn run(client: authed::Client) -> authed::Result<()> {
//! use authed::{ErrorKind, StatusCode, widgets::WidgetsExt};
//!
//! match client.widgets().get(404_404).await {
//!     Ok(widget) => println!("{widget:?}"),
//!     Err(err) if err.status() == Some(StatusCode::NOT_FOUND) => println!("no such widget"),
//!     Err(err) if err.kind() == ErrorKind::Api => {
//!         let detail = err.api_error().and_then(|p| p.detail.as_deref());
//!         println!("the API refused: {}", detail.unwrap_or("no detail"));
//!     }
//!     Err(err) => return Err(err),
//! }
//! # Ok(()) }
//! ```
//!
//! | call | success | errors |
//! |---|---|---|
//! | [`WidgetsExt::me`] | [`Profile`] | |
//! | [`WidgetsHandler::get`] | [`Widget`] | 404 |
//! | [`WidgetsHandler::create`] | [`Widget`] (201) | 422: empty name, unknown color |
//! | [`WidgetsHandler::update`] | [`Widget`] | 404, 422 |
//! | [`WidgetsHandler::delete`] | `()` (204) | 404 |
//! | [`WidgetsHandler::list`] | stream of [`Widget`] or of [`Page`](crate::pagination::Page)s | |
//!
//! # Building your own typed SDK: copy this module
//!
//! Nothing here uses crate internals: the module is written only against `authed`'s public
//! API, so a vendor can copy `src/widgets/` into their own crate and rename. The recipe:
//!
//! 1. **Models** (`models.rs`): one struct per JSON body. Responses derive `Deserialize` and
//!    are `#[non_exhaustive]` so that fields can be added without a breaking change; request
//!    bodies derive `Serialize`, get a constructor taking the required fields plus setters,
//!    and skip unset optional fields (`skip_serializing_if`). Enums the server may extend get
//!    a fallback variant, like [`Color::Other`].
//! 2. **A handler** per resource, borrowing the client (`WidgetsHandler<'c>`), with one method
//!    per endpoint. Each is a line or two on the core: `client.get(path).send::<T>()`,
//!    `client.post(path).json(&body).send()`, `send::<()>()` for `204 No Content`.
//! 3. **A list builder** per collection (`list.rs`): its filters are fields of a
//!    `#[derive(Serialize)]` struct that becomes the query string; `stream()` and `pages()`
//!    hand it to [`Client::paginate`](crate::Client::paginate) with the API's
//!    [`Pagination`](crate::Pagination) strategy.
//! 4. **An entry point**: an extension trait on [`Client`], as [`WidgetsExt`] is (or a newtype
//!    around `Client`):
//!
//! ```
//! use authed::{Client, Result};
//!
//! #[derive(Debug, serde::Deserialize)]
//! #[non_exhaustive]
//! pub struct Invoice { pub id: String, pub total_cents: i64 }
//!
//! /// `client.invoices().get("in_42")`
//! pub trait AcmeExt {
//!     /// The `/v2/invoices` endpoints.
//!     fn invoices(&self) -> InvoicesHandler<'_>;
//! }
//!
//! impl AcmeExt for Client {
//!     fn invoices(&self) -> InvoicesHandler<'_> {
//!         InvoicesHandler { client: self }
//!     }
//! }
//!
//! /// The `/v2/invoices` endpoints.
//! #[derive(Clone, Copy, Debug)]
//! pub struct InvoicesHandler<'c> { client: &'c Client }
//!
//! impl InvoicesHandler<'_> {
//!     /// `GET /v2/invoices/{id}`
//!     pub async fn get(self, id: &str) -> Result<Invoice> {
//!         // Percent-encode ids that come from users before putting them in a path.
//!         let id = url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>();
//!         self.client.get(&format!("/v2/invoices/{id}")).send().await
//!     }
//! }
//! ```
//!
//! Test it the way `tests/widgets.rs` tests this module: against a local wiremock server (or
//! `MockApi::server()` with your own mocks mounted), with a token endpoint in front.

mod list;
mod models;

pub use list::ListWidgets;
pub use models::{Color, NewWidget, Profile, Widget, WidgetPatch};

use std::future::Future;

use crate::{Client, Result};

/// The largest page the API serves; bigger `take` values are capped to it by the server.
pub const MAX_PAGE_SIZE: u64 = 100;

// ===== impl WidgetsExt =====

/// The Widgets API on a [`Client`]: bring it in scope with `use authed::widgets::WidgetsExt;`.
///
/// The core `Client` knows no API; a typed API is an extension trait like this one (see the
/// [module docs](self) for the recipe).
pub trait WidgetsExt {
    /// The typed Widgets endpoints (see [`crate::widgets`]).
    ///
    /// ```no_run
    /// use authed::widgets::WidgetsExt;
    /// # async fn run(client: authed::Client) -> authed::Result<()> {
    /// let widget = client.widgets().get(7).await?;
    /// # Ok(()) }
    /// ```
    fn widgets(&self) -> WidgetsHandler<'_>;

    /// The authenticated user: `GET /v1/me`. A cheap call to check that the credentials work.
    fn me(&self) -> impl Future<Output = Result<Profile>> + Send;
}

impl WidgetsExt for Client {
    fn widgets(&self) -> WidgetsHandler<'_> {
        WidgetsHandler { client: self }
    }

    fn me(&self) -> impl Future<Output = Result<Profile>> + Send {
        self.get("/v1/me").send()
    }
}

// ===== impl WidgetsHandler =====

/// The `/v1/widgets` endpoints, from [`WidgetsExt::widgets`].
///
/// It only borrows the client, so it is free to create per call:
/// `client.widgets().get(7).await?`.
#[derive(Clone, Copy, Debug)]
pub struct WidgetsHandler<'c> {
    client: &'c Client,
}

impl<'c> WidgetsHandler<'c> {
    /// `GET /v1/widgets/{id}`: one widget. A missing widget is an [`Error`](crate::Error) with
    /// status `404`.
    pub async fn get(self, id: u64) -> Result<Widget> {
        self.client.get(&format!("/v1/widgets/{id}")).send().await
    }

    /// `POST /v1/widgets`: creates a widget and returns it with its id.
    ///
    /// An empty name or an unknown color is refused with status `422`; the reason is in
    /// [`Error::api_error`](crate::Error::api_error).
    pub async fn create(self, widget: &NewWidget) -> Result<Widget> {
        self.client.post("/v1/widgets").json(widget).send().await
    }

    /// `PATCH /v1/widgets/{id}`: changes the fields set in `patch` and returns the widget.
    pub async fn update(self, id: u64, patch: &WidgetPatch) -> Result<Widget> {
        self.client
            .patch(&format!("/v1/widgets/{id}"))
            .json(patch)
            .send()
            .await
    }

    /// `DELETE /v1/widgets/{id}`. Deleting a missing widget is an error with status `404`.
    pub async fn delete(self, id: u64) -> Result<()> {
        self.client
            .delete(&format!("/v1/widgets/{id}"))
            .send()
            .await
    }

    /// `GET /v1/widgets`: a listing to filter, then turn into a stream.
    ///
    /// ```no_run
    /// use futures_util::TryStreamExt;
    /// use authed::widgets::WidgetsExt;
    /// # async fn run(client: authed::Client) -> authed::Result<()> {
    /// // The stream is not `Unpin`: pin it to call `try_next` (or use `Box::pin`).
    /// let mut blue = std::pin::pin!(client.widgets().list().color("blue").stream());
    /// while let Some(widget) = blue.try_next().await? {
    ///     println!("{} weighs {} g", widget.name, widget.weight_grams);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn list(self) -> ListWidgets<'c> {
        ListWidgets::new(self.client)
    }
}
