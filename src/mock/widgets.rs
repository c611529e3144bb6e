//! The Widgets reference API: `GET/POST /v1/widgets`, `GET/PATCH/DELETE /v1/widgets/{id}`,
//! `GET /v1/me`.

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use wiremock::Request;

use super::{
    Paging,
    collection::page,
    server::{Cx, Handler, Reply},
};

/// The `sub` of every token and the `id` of `GET /v1/me`.
pub(super) const USER_ID: &str = "user-1";

/// The colors a widget may have; seeded widgets cycle through them.
const COLORS: [&str; 4] = ["red", "green", "blue", "yellow"];

/// A widget as the API stores and returns it.
#[derive(Clone, Debug, Serialize)]
pub(super) struct Widget {
    id: u64,
    name: String,
    color: String,
    weight_grams: u32,
    tags: Vec<String>,
}

impl Widget {
    /// Seeded widget `id`: `"Widget {id}"`, colors in turn, `100 + id % 50` grams, no tags.
    pub(super) fn seed(id: u64) -> Self {
        Self {
            id,
            name: format!("Widget {id}"),
            color: COLORS[((id + 3) % 4) as usize].to_owned(),
            weight_grams: 100 + (id % 50) as u32,
            tags: Vec::new(),
        }
    }
}

/// The body of `POST` (where `name`, `color` and `weight_grams` are required) and `PATCH`.
#[derive(Deserialize)]
struct WidgetFields {
    name: Option<String>,
    color: Option<String>,
    weight_grams: Option<u32>,
    tags: Option<Vec<String>>,
}

impl WidgetFields {
    fn parse(request: &Request) -> Result<Self, Reply> {
        let fields: Self = serde_json::from_slice(&request.body).map_err(|e| {
            let status = if e.is_data() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::BAD_REQUEST
            };
            Reply::problem(status, format!("invalid widget: {e}"))
        })?;
        if fields.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(unprocessable("name must not be empty"));
        }
        if let Some(color) = &fields.color
            && !COLORS.contains(&color.as_str())
        {
            return Err(unprocessable(&format!(
                "color {color:?} is not one of {}",
                COLORS.join(", ")
            )));
        }
        Ok(fields)
    }

    fn apply(self, widget: &mut Widget) {
        widget.name = self.name.unwrap_or(std::mem::take(&mut widget.name));
        widget.color = self.color.unwrap_or(std::mem::take(&mut widget.color));
        widget.weight_grams = self.weight_grams.unwrap_or(widget.weight_grams);
        widget.tags = self.tags.unwrap_or(std::mem::take(&mut widget.tags));
    }
}

fn unprocessable(detail: &str) -> Reply {
    Reply::problem(StatusCode::UNPROCESSABLE_ENTITY, detail)
}

fn not_found(id: &str) -> Reply {
    Reply::problem(StatusCode::NOT_FOUND, format!("widget {id} does not exist"))
}

/// `/v1/me` and `/v1/widgets[/{id}]`.
pub(super) struct WidgetsApi;

impl Handler for WidgetsApi {
    const PROTECTED: bool = true;

    fn handle(&self, request: &Request, cx: &mut Cx<'_>) -> Reply {
        let path = request.url.path();
        let method = &request.method;
        if path == "/v1/me" {
            if *method != Method::GET {
                return Reply::method_not_allowed(request, "GET");
            }
            let scopes: Vec<&str> = cx.scope.split(' ').collect();
            let me = json!({ "id": USER_ID, "name": "Ada Lovelace", "email": "ada@example.com", "scopes": scopes });
            return Reply::json(StatusCode::OK, &me);
        }
        let needed = if *method == Method::GET {
            "widgets:read"
        } else {
            "widgets:write"
        };
        if !cx.has_scope(needed) {
            return Reply::insufficient_scope(needed);
        }
        match path.strip_prefix("/v1/widgets/") {
            None if *method == Method::GET => {
                let widgets: Vec<serde_json::Value> = cx
                    .state
                    .widgets
                    .values()
                    .filter_map(|w| serde_json::to_value(w).ok())
                    .collect();
                page(&widgets, &Paging::offset("skip", "take"), request, cx)
            }
            None if *method == Method::POST => create(request, cx),
            None => Reply::method_not_allowed(request, "GET, POST"),
            Some(id) => {
                let Some(widget) = id
                    .parse()
                    .ok()
                    .and_then(|id: u64| cx.state.widgets.get_mut(&id))
                else {
                    return match *method {
                        Method::GET | Method::PATCH | Method::DELETE => not_found(id),
                        _ => Reply::method_not_allowed(request, "GET, PATCH, DELETE"),
                    };
                };
                match *method {
                    Method::GET => Reply::json(StatusCode::OK, widget),
                    Method::PATCH => match WidgetFields::parse(request) {
                        Ok(fields) => {
                            fields.apply(widget);
                            Reply::json(StatusCode::OK, widget)
                        }
                        Err(reply) => reply,
                    },
                    Method::DELETE => {
                        let id = widget.id;
                        cx.state.widgets.remove(&id);
                        Reply::new(StatusCode::NO_CONTENT)
                    }
                    _ => Reply::method_not_allowed(request, "GET, PATCH, DELETE"),
                }
            }
        }
    }
}

/// `POST /v1/widgets`: 201 with a `Location` header.
fn create(request: &Request, cx: &mut Cx<'_>) -> Reply {
    let fields = match WidgetFields::parse(request) {
        Ok(fields) => fields,
        Err(reply) => return reply,
    };
    let (Some(name), Some(color), Some(weight_grams)) =
        (fields.name, fields.color, fields.weight_grams)
    else {
        return unprocessable("name, color and weight_grams are required");
    };
    let id = cx.state.next_widget_id;
    cx.state.next_widget_id += 1;
    let widget = Widget {
        id,
        name,
        color,
        weight_grams,
        tags: fields.tags.unwrap_or_default(),
    };
    let reply = Reply::json(StatusCode::CREATED, &widget)
        .header("location", format!("{}/v1/widgets/{id}", cx.api.base_url));
    cx.state.widgets.insert(id, widget);
    reply
}
