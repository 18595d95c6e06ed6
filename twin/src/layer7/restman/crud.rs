//! The collection pattern (reference §1.3) for any [`Resource`]: list with filters, get,
//! create (POST), create-or-update (PUT, optimistic `version`), delete.

use axum::http::{Method, StatusCode};

use super::envelope::{self, ItemHead};
use super::request::{Failure, Reply, Request};
use super::resources::Resource;
use super::xml::Element;
use crate::layer7::store::{Change, EntityKind, RevisionOptions, Store, Stored, is_goid};

/// The Item head of a stored entity.
pub fn head<T: Resource>(stored: &Stored<T>, base: &str) -> ItemHead {
    ItemHead {
        name: stored.entity.name(),
        id: stored.id.clone(),
        kind: T::TYPE.to_owned(),
        link: format!("{base}/{}/{}", T::COLLECTION, stored.id),
    }
}

/// The full `l7:Item` of a stored entity.
pub fn full_item<T: Resource>(stored: &Stored<T>, store: &Store, base: &str) -> Element {
    envelope::item(&head(stored, base), Some(T::to_xml(stored, store)))
}

/// Serves `/{collection}` and `/{collection}/{id}`.
pub fn serve<T: Resource>(
    store: &mut Store,
    request: &Request,
    rest: &[&str],
) -> Result<Reply, Failure> {
    match (rest, &request.method) {
        ([], &Method::GET) => list::<T>(store, request),
        ([], &Method::POST) => create::<T>(store, request),
        ([id], &Method::GET) => get::<T>(store, request, id),
        ([id], &Method::PUT) => put::<T>(store, request, id),
        ([id], &Method::DELETE) => delete::<T>(store, id),
        ([] | [_], method) => Err(Failure::method_not_allowed(method, &request.path)),
        _ => Err(Failure::not_found(format!(
            "no resource at {}",
            request.path
        ))),
    }
}

/// The store key a list filter parameter matches, for `T`.
fn filter_field<T: Resource>(parameter: &str) -> Option<&'static str> {
    if parameter == "name" {
        return Some(if T::KIND == EntityKind::PrivateKey {
            "alias"
        } else {
            "name"
        });
    }
    T::FILTERS
        .iter()
        .find(|(name, _)| *name == parameter)
        .map(|(_, field)| *field)
}

/// `GET /{collection}`: the entities matching every filter (values of one filter: any).
fn list<T: Resource>(store: &Store, request: &Request) -> Result<Reply, Failure> {
    let mut filters: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut sort_by_name = false;
    let mut descending = false;
    for (key, value) in &request.query {
        match key.as_str() {
            "sort" => sort_by_name = value == "name",
            "order" => match value.as_str() {
                "asc" => descending = false,
                "desc" => descending = true,
                other => {
                    return Err(Failure::bad_request(format!(
                        "order: expected asc or desc, got '{other}'"
                    )));
                }
            },
            other => {
                let field = filter_field::<T>(other).ok_or_else(|| {
                    Failure::bad_request(format!("Invalid filter '{other}' for {}", T::COLLECTION))
                })?;
                match filters.iter_mut().find(|(name, _)| *name == field) {
                    Some((_, values)) => values.push(value),
                    None => filters.push((field, vec![value])),
                }
            }
        }
    }
    let mut rows: Vec<&Stored<T>> = store
        .all::<T>()
        .iter()
        .filter(|row| {
            let keys = row.entity.keys();
            filters.iter().all(|(field, values)| {
                values
                    .iter()
                    .any(|value| keys.contains(&format!("{field}={value}")))
            })
        })
        .collect();
    if sort_by_name {
        rows.sort_by_key(|row| row.entity.name());
    }
    if descending {
        rows.reverse();
    }
    let items = rows
        .into_iter()
        .map(|row| full_item(row, store, &request.base))
        .collect();
    let list = envelope::list(T::TYPE, &request.url(), items);
    Ok(Reply::document(StatusCode::OK, &list))
}

/// `GET /{collection}/{id}`.
fn get<T: Resource>(store: &Store, request: &Request, id: &str) -> Result<Reply, Failure> {
    let stored = found::<T>(store, id)?;
    Ok(Reply::document(
        StatusCode::OK,
        &full_item(stored, store, &request.base),
    ))
}

/// The entity `id` or a 404 naming it.
pub fn found<'a, T: Resource>(store: &'a Store, id: &str) -> Result<&'a Stored<T>, Failure> {
    store.get::<T>(id).ok_or_else(|| {
        Failure::not_found(format!(
            "Resource not found: no {} with id {id}",
            T::KIND.noun()
        ))
    })
}

/// The resource element of the body, checked to be an `l7:<T::ELEMENT>`.
fn body_resource<T: Resource>(request: &Request) -> Result<Element, Failure> {
    let element = request.xml()?;
    // A body may come wrapped in an Item's Resource, as GET answers it.
    let element = match element.local_name() {
        "Item" => element
            .find("Resource")
            .and_then(|resource| resource.children.first())
            .cloned()
            .unwrap_or(element),
        _ => element,
    };
    if element.local_name() != T::ELEMENT {
        return Err(Failure::bad_request(format!(
            "expected an l7:{} document, got l7:{}",
            T::ELEMENT,
            element.local_name()
        )));
    }
    Ok(element)
}

/// The revision options of a write: `active` (default true) and `versionComment`.
pub fn revision_options(request: &Request) -> Result<RevisionOptions, Failure> {
    Ok(RevisionOptions {
        activate: request.flag("active", true)?,
        comment: request.param("versionComment").map(str::to_owned),
    })
}

/// `POST /{collection}`: creates with a new goid; 201 with a reference Item.
fn create<T: Resource>(store: &mut Store, request: &Request) -> Result<Reply, Failure> {
    if T::KIND == EntityKind::PrivateKey {
        return Err(Failure::bad_request(
            "create private keys with POST privateKeys/{keystoreId}:{alias}".to_owned(),
        ));
    }
    let element = body_resource::<T>(request)?;
    let parsed = T::from_xml(&element, None).map_err(|error| Failure::invalid(error.0))?;
    parsed
        .entity
        .check_new()
        .map_err(|error| Failure::invalid(error.0))?;
    let saved = store.save(None, parsed.entity, None, &revision_options(request)?)?;
    let stored = found::<T>(store, &saved.id)?;
    Ok(Reply::document(
        StatusCode::CREATED,
        &envelope::item(&head(stored, &request.base), None),
    )
    .changed(true))
}

/// `PUT /{collection}/{id}`: updates (a stale `version` is refused) or creates at `id`.
fn put<T: Resource>(store: &mut Store, request: &Request, id: &str) -> Result<Reply, Failure> {
    let element = body_resource::<T>(request)?;
    let parsed = T::from_xml(&element, Some(id)).map_err(|error| Failure::invalid(error.0))?;
    if parsed.id.as_deref().is_some_and(|given| given != id) {
        return Err(Failure::bad_request(format!(
            "the resource's id {} is not the id in the URL ({id})",
            parsed.id.as_deref().unwrap_or_default()
        )));
    }
    let mut entity = parsed.entity;
    match store.get::<T>(id) {
        Some(previous) => entity.keep_hidden(&previous.entity),
        None => {
            if T::KIND != EntityKind::PrivateKey && !is_goid(id) {
                return Err(Failure::bad_request(format!(
                    "'{id}' is not a valid id (32 hexadecimal digits)"
                )));
            }
            entity
                .check_new()
                .map_err(|error| Failure::invalid(error.0))?;
        }
    }
    let saved = store.save(
        Some(id),
        entity,
        parsed.version,
        &revision_options(request)?,
    )?;
    let stored = found::<T>(store, &saved.id)?;
    let status = if saved.change == Change::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(
        Reply::document(status, &envelope::item(&head(stored, &request.base), None))
            .changed(saved.change != Change::Unchanged),
    )
}

/// `DELETE /{collection}/{id}`: 204.
fn delete<T: Resource>(store: &mut Store, id: &str) -> Result<Reply, Failure> {
    found::<T>(store, id)?;
    store.delete::<T>(id)?;
    Ok(Reply::no_content().changed(true))
}
