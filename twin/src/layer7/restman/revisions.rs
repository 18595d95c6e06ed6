//! Policy revisions of services and policies (reference §1.4): `/{id}/versions`,
//! `/versions/{n}`, `/versions/active`, `POST /versions/{n}/activate` and
//! `PUT /versions/{n|active}/comment`, as `l7:PolicyVersion` resources.

use axum::http::{Method, StatusCode};

use super::crud::{self, head};
use super::envelope::{self, ItemHead};
use super::request::{Failure, Reply, Request};
use super::resources::Resource;
use super::xml::Element;
use crate::layer7::store::{Change, HasRevisions, PolicyRevision, Store, Stored};

/// The Item type of a revision.
const TYPE: &str = "POLICY_VERSION";

/// Serves `/{collection}/{id}/versions/...` (`rest` is what follows `versions`).
pub fn serve<T: Resource + HasRevisions>(
    store: &mut Store,
    request: &Request,
    id: &str,
    rest: &[&str],
) -> Result<Reply, Failure> {
    let stored = crud::found::<T>(store, id)?.clone();
    match (rest, &request.method) {
        ([], &Method::GET) => Ok(list(&stored, request)),
        ([which], &Method::GET) => {
            let revision = pick(&stored, which)?;
            Ok(Reply::document(
                StatusCode::OK,
                &item(&stored, revision, request, true),
            ))
        }
        ([which, "activate"], &Method::POST) => {
            let ordinal = pick(&stored, which)?.ordinal;
            let saved = store.activate_revision::<T>(id, ordinal)?;
            let stored = crud::found::<T>(store, id)?;
            Ok(Reply::document(
                StatusCode::OK,
                &envelope::item(&head(stored, &request.base), None),
            )
            .changed(saved.change != Change::Unchanged))
        }
        ([which, "comment"], &Method::PUT) => {
            let ordinal = pick(&stored, which)?.ordinal;
            let comment = comment_of(request)?;
            let saved = store.comment_revision::<T>(id, ordinal, comment)?;
            let stored = crud::found::<T>(store, id)?;
            let revision = pick(stored, &ordinal.to_string())?;
            Ok(
                Reply::document(StatusCode::OK, &item(stored, revision, request, false))
                    .changed(saved.change != Change::Unchanged),
            )
        }
        ([] | [_] | [_, "activate" | "comment"], method) => {
            Err(Failure::method_not_allowed(method, &request.path))
        }
        _ => Err(Failure::not_found(format!(
            "no resource at {}",
            request.path
        ))),
    }
}

/// The revision `which` (`active` or an ordinal) of `stored`.
fn pick<'a, T: HasRevisions>(
    stored: &'a Stored<T>,
    which: &str,
) -> Result<&'a PolicyRevision, Failure> {
    let revisions = stored.entity.revisions();
    let revision = if which == "active" {
        revisions.active()
    } else {
        let ordinal = which.parse::<u64>().map_err(|_| {
            Failure::bad_request(format!("'{which}' is not a revision number (or 'active')"))
        })?;
        revisions.get(ordinal)
    };
    revision.ok_or_else(|| {
        Failure::not_found(format!(
            "{} {} has no revision {which}",
            T::KIND.noun(),
            stored.id
        ))
    })
}

/// The comment a `PUT .../comment` body carries: plain text, or the text of an element.
fn comment_of(request: &Request) -> Result<Option<String>, Failure> {
    let text = String::from_utf8_lossy(&request.body).trim().to_owned();
    let comment = if text.starts_with('<') {
        request.xml()?.text.trim().to_owned()
    } else {
        text
    };
    Ok((!comment.is_empty()).then_some(comment))
}

/// `GET .../versions`: every revision, oldest first.
fn list<T: Resource + HasRevisions>(stored: &Stored<T>, request: &Request) -> Reply {
    let items = stored
        .entity
        .revisions()
        .all()
        .iter()
        .map(|revision| item(stored, revision, request, true))
        .collect();
    Reply::document(StatusCode::OK, &envelope::list(TYPE, &request.url(), items))
}

/// The `l7:Item` of one revision.
fn item<T: Resource + HasRevisions>(
    stored: &Stored<T>,
    revision: &PolicyRevision,
    request: &Request,
    with_resource: bool,
) -> Element {
    let active = stored.entity.revisions().active_ordinal() == revision.ordinal;
    let head = ItemHead {
        name: format!("Policy Version: {}", revision.ordinal),
        id: revision.goid.clone(),
        kind: TYPE.to_owned(),
        link: format!(
            "{}/{}/{}/versions/{}",
            request.base,
            T::COLLECTION,
            stored.id,
            revision.ordinal
        ),
    };
    let resource = Element::new("l7:PolicyVersion")
        .attr("id", &revision.goid)
        .attr("version", "0")
        .child(Element::text("l7:Ordinal", revision.ordinal.to_string()))
        .child_opt(
            revision
                .comment
                .as_ref()
                .map(|comment| Element::text("l7:Comment", comment)),
        )
        .child(Element::text("l7:Active", active.to_string()))
        .child(Element::text("l7:Time", revision.time_ms.to_string()))
        .child(Element::text("l7:Xml", &revision.xml));
    envelope::item(&head, with_resource.then_some(resource))
}
