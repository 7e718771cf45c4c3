//! Request bodies declared once.
//!
//! Each writable resource declares its body as one struct (e.g. `companies::CompanyBody`) that
//! derives `Deserialize`, so the server decodes bodies into it, and `ToSchema`, so it describes
//! itself with the bounds, patterns and formats its validation enforces (the validated types
//! of `domain` describe their own). Everything else about a body derives from that
//! description:
//!
//! - the create schema ([`create`], e.g. `CreateCompany`): the members as one closed object
//!   (`additionalProperties: false`; a `#[serde(flatten)]`ed part, such as the members every
//!   organisation has, merged in): `null` counts as absent, so its `required` members are never
//!   null and every other member may be;
//! - the merge-patch schema ([`patch`], e.g. `CompanyPatch`): the same members, none required,
//!   each nullable unless it is required on create. RFC 7396: `null` removes a member, and the
//!   patched record must still validate as a create body would, so a required member cannot be
//!   cleared while any other can (to its default);
//! - the [`Shape`] ([`shape`]): the writable members, with the members of nested objects and
//!   of list items, and the read-only members: the response's others. The unknown-field and
//!   read-only check reads it.
//!
//! What a schema cannot say (a check digit, one member's rule depending on another's,
//! uniqueness, a reference to a live record) the member's description says.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use utoipa::openapi::schema::{
    AdditionalProperties, AnyOf, ArrayItems, Object, OneOf, Schema, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::ToSchema;

use super::body::{Member, Shape, ValueKind};

/// Schemas by name, as utoipa collects the components a schema refers to.
pub type Components = Vec<(String, RefOr<Schema>)>;

/// A body declaration's two request schemas, which `request_bodies!` derives and names.
pub trait Bodies {
    /// The `POST` schema.
    type Create: ToSchema;
    /// The `PATCH` schema.
    type Patch: ToSchema;
}

/// The `POST` and `PATCH` schemas of a body declaration, as two named components: `$create`
/// (see [`create`]) and `$patch` (see [`patch`]). Request bodies name them in
/// `request_body(content = ...)`.
macro_rules! request_bodies {
    ($body:ty => $create:ident, $patch:ident) => {
        $crate::http::machinery::schema::request_bodies!(@fixed $body => $create, $patch, &[]);
    };
    // A resource with members fixed at creation names itself, so that its patch schema leaves
    // out the members its `Resource::FIXED` lists, the list the pipeline's check reads.
    ($body:ty => $create:ident, $patch:ident, fixed in $resource:ty) => {
        $crate::http::machinery::schema::request_bodies!(
            @fixed $body => $create, $patch,
            <$resource as $crate::http::machinery::record::Resource>::FIXED
        );
    };
    (@fixed $body:ty => $create:ident, $patch:ident, $fixed:expr) => {
        #[doc = concat!(
                            "The `POST` body: [`", stringify!($body),
                            "`] as a closed object whose required members are never null."
                        )]
        pub struct $create;

        impl $crate::http::machinery::schema::Bodies for $body {
            type Create = $create;
            type Patch = $patch;
        }

        impl utoipa::PartialSchema for $create {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::http::machinery::schema::create::<$body>()
            }
        }

        impl utoipa::ToSchema for $create {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($create))
            }

            fn schemas(schemas: &mut $crate::http::machinery::schema::Components) {
                $crate::http::machinery::schema::components::<$body>(schemas);
            }
        }

        #[doc = concat!(
                            "The `PATCH` body: a JSON Merge Patch of [`", stringify!($create),
                            "`], every member optional and, unless required there, nullable; ",
                            "the members fixed at creation left out."
                        )]
        pub struct $patch;

        impl utoipa::PartialSchema for $patch {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::http::machinery::schema::patch::<$body>(stringify!($create), $fixed).0
            }
        }

        impl utoipa::ToSchema for $patch {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($patch))
            }

            fn schemas(schemas: &mut $crate::http::machinery::schema::Components) {
                $crate::http::machinery::schema::components::<$body>(schemas);
                schemas.extend(
                    $crate::http::machinery::schema::patch::<$body>(stringify!($create), $fixed).1,
                );
            }
        }
    };
}

pub(crate) use request_bodies;

/// A declaration's members as one object.
struct Merged {
    /// Every member, from every part.
    object: Object,
    /// The components the members refer to (not those merged in as parts).
    components: Components,
}

/// `T`'s schema with its parts (`allOf`, as `#[serde(flatten)]` makes) merged into one object.
fn merged<T: ToSchema>() -> Merged {
    let mut all = Components::new();
    T::schemas(&mut all);
    let mut object = Object::with_type(Type::Object);
    let mut merged_in = Vec::new();
    merge(&T::schema(), &all, &mut object, &mut merged_in);
    let components = all
        .into_iter()
        .filter(|(name, _)| !merged_in.contains(name))
        .map(|(name, schema)| (name, normalized(schema)))
        .collect();
    Merged { object, components }
}

fn merge(
    schema: &RefOr<Schema>,
    components: &Components,
    into: &mut Object,
    merged_in: &mut Vec<String>,
) {
    match schema {
        RefOr::Ref(reference) => {
            let name = ref_name(reference);
            if let Some(part) = lookup(components, name) {
                merged_in.push(name.to_owned());
                merge(part, components, into, merged_in);
            }
        }
        RefOr::T(Schema::AllOf(all)) => {
            if into.description.is_none() {
                into.description.clone_from(&all.description);
            }
            for part in &all.items {
                merge(part, components, into, merged_in);
            }
        }
        RefOr::T(Schema::Object(object)) => {
            if into.description.is_none() {
                into.description.clone_from(&object.description);
            }
            into.properties.extend(object.properties.clone());
            into.required.extend(object.required.iter().cloned());
        }
        RefOr::T(_) => {}
    }
}

fn ref_name(reference: &Ref) -> &str {
    reference
        .ref_location
        .rsplit_once('/')
        .map_or(reference.ref_location.as_str(), |(_, name)| name)
}

fn lookup<'c>(components: &'c Components, name: &str) -> Option<&'c RefOr<Schema>> {
    components
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, schema)| schema)
}

/// The create schema of body declaration `B`: its members as one closed object, the required
/// ones never null.
pub fn create<B: ToSchema>() -> RefOr<Schema> {
    RefOr::T(Schema::Object(create_object::<B>()))
}

fn create_object<B: ToSchema>() -> Object {
    let mut object = merged::<B>().object;
    for (name, member) in object.properties.iter_mut() {
        // `null` counts as absent: a required member may not be it, an optional one may.
        *member = if object.required.contains(name) {
            non_null(member.clone())
        } else {
            simplified(with_null(member.clone()))
        };
    }
    normalize_members(&mut object);
    object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
    object
}

/// The merge-patch schema of body declaration `B` (whose create schema is named `create_name`),
/// and the components it adds: the patch of a nested object whose own create schema requires
/// a member (`address` has none, so it keeps its schema). The members in `fixed` (set at
/// creation, never patched) are left out.
pub fn patch<B: ToSchema>(create_name: &str, fixed: &[&str]) -> (RefOr<Schema>, Components) {
    let components = merged::<B>().components;
    let mut added = Components::new();
    let mut object = create_object::<B>();
    object
        .properties
        .retain(|name, _| !fixed.contains(&name.as_str()));
    object
        .required
        .retain(|name| !fixed.contains(&name.as_str()));
    patch_members(&mut object, &components, &mut added);
    let mut description = format!(
        "A JSON Merge Patch (RFC 7396) of `{create_name}`: members left out keep their value, \
         objects merge member by member, lists are replaced whole, and `null` clears a member \
         (to its default) except those `{create_name}` requires. The patched record must \
         validate as a create body would; a patch that changes nothing writes nothing."
    );
    if !fixed.is_empty() {
        let names: Vec<String> = fixed.iter().map(|name| format!("`{name}`")).collect();
        description.push_str(&format!(
            " {} {} fixed at creation, so not a member here: a patch that names {}, even with \
             its current value, is 422 `read_only`, as one naming a member the service sets.",
            names.join(" and "),
            if fixed.len() == 1 { "is" } else { "are" },
            if fixed.len() == 1 { "it" } else { "one" },
        ));
    }
    object.description = Some(description);
    (RefOr::T(Schema::Object(object)), added)
}

fn patch_members(object: &mut Object, components: &Components, added: &mut Components) {
    let required = std::mem::take(&mut object.required);
    for (name, member) in object.properties.iter_mut() {
        let mut patched = patch_nested(member.clone(), components, added);
        if !required.contains(name) {
            patched = simplified(with_null(patched));
        }
        *member = patched;
    }
}

/// A member naming an object component names that object's patch instead, when it differs.
fn patch_nested(
    member: RefOr<Schema>,
    components: &Components,
    added: &mut Components,
) -> RefOr<Schema> {
    match member {
        RefOr::Ref(reference) => {
            let name = ref_name(&reference).to_owned();
            let Some(RefOr::T(Schema::Object(object))) = lookup(components, &name) else {
                return RefOr::Ref(reference);
            };
            let mut patched = object.clone();
            patch_members(&mut patched, components, added);
            if patched == *object {
                return RefOr::Ref(reference);
            }
            let patch_name = format!("{name}Patch");
            if lookup(added, &patch_name).is_none() {
                added.push((patch_name.clone(), RefOr::T(Schema::Object(patched))));
            }
            let mut renamed = Ref::from_schema_name(patch_name);
            renamed.description = reference.description;
            RefOr::Ref(renamed)
        }
        RefOr::T(Schema::OneOf(mut one)) => {
            one.items = one
                .items
                .into_iter()
                .map(|item| patch_nested(item, components, added))
                .collect();
            RefOr::T(Schema::OneOf(one))
        }
        other => other,
    }
}

fn is_null(schema: &RefOr<Schema>) -> bool {
    matches!(
        schema,
        RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null)
    )
}

/// The schema less its `null` alternative.
fn non_null(schema: RefOr<Schema>) -> RefOr<Schema> {
    match schema {
        RefOr::T(Schema::Object(mut object)) => {
            if let SchemaType::Array(types) = &object.schema_type {
                let kept: Vec<Type> = types
                    .iter()
                    .filter(|t| **t != Type::Null)
                    .cloned()
                    .collect();
                object.schema_type = match kept.as_slice() {
                    [one] => SchemaType::Type(one.clone()),
                    _ => SchemaType::Array(kept),
                };
            }
            if let Some(values) = &mut object.enum_values {
                values.retain(|v| !v.is_null());
            }
            RefOr::T(Schema::Object(object))
        }
        RefOr::T(Schema::Array(mut array)) => {
            if let SchemaType::Array(types) = &array.schema_type {
                if types.contains(&Type::Null) {
                    array.schema_type = SchemaType::Type(Type::Array);
                }
            }
            RefOr::T(Schema::Array(array))
        }
        RefOr::T(Schema::OneOf(one)) => {
            let description = one.description.clone();
            let mut items: Vec<RefOr<Schema>> =
                one.items.into_iter().filter(|i| !is_null(i)).collect();
            if items.len() == 1 {
                let item = items.remove(0);
                with_description(item, description)
            } else {
                let mut kept = OneOf::new();
                kept.items = items;
                kept.description = description;
                RefOr::T(Schema::OneOf(kept))
            }
        }
        other => other,
    }
}

/// The schema with a `null` alternative.
fn with_null(schema: RefOr<Schema>) -> RefOr<Schema> {
    match schema {
        RefOr::T(Schema::Object(mut object)) => {
            object.schema_type = match object.schema_type {
                SchemaType::Type(Type::Null) => SchemaType::Type(Type::Null),
                SchemaType::Type(t) => SchemaType::Array(vec![t, Type::Null]),
                SchemaType::Array(mut types) => {
                    if !types.contains(&Type::Null) {
                        types.push(Type::Null);
                    }
                    SchemaType::Array(types)
                }
                SchemaType::AnyValue => SchemaType::AnyValue,
            };
            if let Some(values) = &mut object.enum_values {
                if !values.iter().any(serde_json::Value::is_null) {
                    values.push(serde_json::Value::Null);
                }
            }
            RefOr::T(Schema::Object(object))
        }
        RefOr::T(Schema::Array(mut array)) => {
            if array.schema_type == SchemaType::Type(Type::Array) {
                array.schema_type = SchemaType::Array(vec![Type::Array, Type::Null]);
            }
            RefOr::T(Schema::Array(array))
        }
        RefOr::T(Schema::OneOf(mut one)) => {
            if !one.items.iter().any(is_null) {
                one.items.insert(0, null());
            }
            RefOr::T(Schema::OneOf(one))
        }
        RefOr::Ref(mut reference) => {
            let description = std::mem::take(&mut reference.description);
            let mut one = OneOf::new();
            one.items = vec![null(), RefOr::Ref(reference)];
            one.description = (!description.is_empty()).then_some(description);
            RefOr::T(Schema::OneOf(one))
        }
        other => other,
    }
}

fn null() -> RefOr<Schema> {
    RefOr::T(Schema::Object(Object::with_type(Type::Null)))
}

fn with_description(schema: RefOr<Schema>, description: Option<String>) -> RefOr<Schema> {
    let Some(description) = description else {
        return schema;
    };
    match schema {
        RefOr::Ref(mut reference) => {
            reference.description = description;
            RefOr::Ref(reference)
        }
        RefOr::T(Schema::Object(mut object)) => {
            object.description = Some(description);
            RefOr::T(Schema::Object(object))
        }
        RefOr::T(Schema::Array(mut array)) => {
            array.description = Some(description);
            RefOr::T(Schema::Array(array))
        }
        other => other,
    }
}

/// utoipa's wrappers around an inlined schema as the schema itself: `oneOf: [null, {inline}]`
/// (an inlined `Option`) as the inline schema with `null` among its types, and a one-item
/// `oneOf` (which only carries a description) as its item. The same values, and simpler for
/// client generators.
fn simplified(schema: RefOr<Schema>) -> RefOr<Schema> {
    let RefOr::T(Schema::OneOf(one)) = schema else {
        return schema;
    };
    let inline = |item: &RefOr<Schema>| {
        matches!(
            item,
            RefOr::T(Schema::Object(_)) | RefOr::T(Schema::Array(_))
        )
    };
    match one.items.as_slice() {
        [first, item] if is_null(first) && inline(item) => {
            with_description(with_null(item.clone()), one.description.clone())
        }
        [item] if inline(item) => with_description(item.clone(), one.description.clone()),
        _ => RefOr::T(Schema::OneOf(one)),
    }
}

/// An object's members [`simplified`], and those it does not require [`blank_allowed`].
fn normalized(schema: RefOr<Schema>) -> RefOr<Schema> {
    match schema {
        RefOr::T(Schema::Object(mut object)) => {
            normalize_members(&mut object);
            RefOr::T(Schema::Object(object))
        }
        other => other,
    }
}

fn normalize_members(object: &mut Object) {
    for (name, member) in object.properties.iter_mut() {
        let mut simple = simplified(member.clone());
        if !object.required.contains(name) {
            simple = blank_allowed(simple);
        }
        *member = simple;
    }
}

/// Formats of typed values (a date, an id): blank text is no such value, so the server refuses
/// it rather than taking it as absent. Every other string member is text.
const TYPED_FORMATS: &[&str] = &["date", "date-time", "time", "uuid"];

/// An optional text member's schema that also matches blank text: the server takes it as
/// absent. (A typed member, a date or an id, is not text: blank is refused there.) A pattern
/// takes a blank alternative; a format or an enum cannot, so the member becomes either its
/// values or blank text (`anyOf`), within the same length bound.
fn blank_allowed(schema: RefOr<Schema>) -> RefOr<Schema> {
    let RefOr::T(Schema::Object(mut object)) = schema else {
        return schema;
    };
    let text = match &object.schema_type {
        SchemaType::Type(t) => *t == Type::String,
        SchemaType::Array(types) => types.contains(&Type::String),
        SchemaType::AnyValue => false,
    };
    let format = object
        .format
        .as_ref()
        .and_then(|f| serde_json::to_value(f).ok())
        .and_then(|f| f.as_str().map(str::to_owned));
    if !text
        || format
            .as_deref()
            .is_some_and(|f| TYPED_FORMATS.contains(&f))
    {
        return RefOr::T(Schema::Object(object));
    }
    let blank = format!("^[{}]*$", crate::domain::WHITESPACE_RANGES);
    if format.is_none() && object.enum_values.is_none() {
        if let Some(pattern) = object.pattern.take() {
            object.pattern = Some(if pattern == crate::domain::text_pattern(0) {
                pattern
            } else {
                format!("{blank}|{pattern}")
            });
        }
        return RefOr::T(Schema::Object(object));
    }
    let mut value = Object::with_type(SchemaType::AnyValue);
    value.format = object.format.take();
    value.pattern = object.pattern.take();
    value.enum_values = object.enum_values.take();
    value.min_length = object.min_length.take();
    value.max_length = object.max_length;
    let mut empty = Object::with_type(SchemaType::AnyValue);
    empty.description = Some("Blank: counts as absent.".to_owned());
    empty.pattern = Some(blank);
    empty.max_length = object.max_length.take();
    let mut either = AnyOf::new();
    either.schema_type = object.schema_type;
    either.description = object.description.take();
    either.default = object.default.take();
    either.examples = std::mem::take(&mut object.examples);
    either.items = vec![
        RefOr::T(Schema::Object(value)),
        RefOr::T(Schema::Object(empty)),
    ];
    RefOr::T(Schema::AnyOf(either))
}

/// The components body declaration `B`'s schemas refer to (its merged parts aside).
pub fn components<B: ToSchema>(out: &mut Components) {
    for (name, schema) in merged::<B>().components {
        if lookup(out, &name).is_none() {
            out.push((name, schema));
        }
    }
}

/// The shape of body declaration `B` on a resource served as `R`: `B`'s members, and as
/// read-only every other member of `R`. Built once per pair.
pub fn shape<B: ToSchema + 'static, R: ToSchema + 'static>() -> &'static Shape {
    static SHAPES: OnceLock<Mutex<HashMap<TypeId, &'static Shape>>> = OnceLock::new();
    let mut shapes = SHAPES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    shapes
        .entry(TypeId::of::<(B, R)>())
        .or_insert_with(|| Box::leak(Box::new(build_shape::<B, R>())))
}

/// The shape a patch of body declaration `B` on a resource served as `R` may carry: [`shape`]'s,
/// with the members in `fixed` taken from the writable ones and named fixed. Built once per pair.
pub fn patch_shape<B: ToSchema + 'static, R: ToSchema + 'static>(
    fixed: &'static [&'static str],
) -> &'static Shape {
    static SHAPES: OnceLock<Mutex<HashMap<TypeId, &'static Shape>>> = OnceLock::new();
    let mut shapes = SHAPES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    shapes.entry(TypeId::of::<(B, R)>()).or_insert_with(|| {
        let mut shape = shape::<B, R>().clone();
        shape
            .members
            .retain(|member| !fixed.contains(&member.name.as_str()));
        shape.fixed = fixed.iter().map(|name| (*name).to_owned()).collect();
        Box::leak(Box::new(shape))
    })
}

fn build_shape<B: ToSchema, R: ToSchema>() -> Shape {
    let body = merged::<B>();
    let served = merged::<R>();
    let members = body
        .object
        .properties
        .iter()
        .map(|(name, schema)| Member {
            name: name.clone(),
            value: value_kind(schema, &body.components),
            nested: nested_shape(schema, &body.components),
        })
        .collect();
    let read_only = served
        .object
        .properties
        .keys()
        .filter(|name| !body.object.properties.contains_key(*name))
        .cloned()
        .collect();
    Shape {
        members,
        read_only,
        fixed: Vec::new(),
    }
}

/// The members of an object, or of the objects of a list, that `schema` describes.
fn nested_shape(schema: &RefOr<Schema>, components: &Components) -> Option<Shape> {
    match schema {
        RefOr::Ref(reference) => nested_shape(lookup(components, ref_name(reference))?, components),
        RefOr::T(Schema::OneOf(one)) => one
            .items
            .iter()
            .find_map(|item| nested_shape(item, components)),
        RefOr::T(Schema::Array(array)) => match &array.items {
            ArrayItems::RefOrSchema(items) => nested_shape(items, components),
            ArrayItems::False => None,
        },
        RefOr::T(Schema::Object(object)) if !object.properties.is_empty() => Some(Shape {
            members: object
                .properties
                .iter()
                .map(|(name, member)| Member {
                    name: name.clone(),
                    value: value_kind(member, components),
                    nested: nested_shape(member, components),
                })
                .collect(),
            ..Shape::default()
        }),
        RefOr::T(_) => None,
    }
}

/// What the values `schema` describes are (`null` alternatives looked through).
fn value_kind(schema: &RefOr<Schema>, components: &Components) -> ValueKind {
    match schema {
        RefOr::Ref(reference) => lookup(components, ref_name(reference))
            .map_or(ValueKind::Text, |schema| value_kind(schema, components)),
        RefOr::T(Schema::OneOf(one)) => one
            .items
            .iter()
            .find(|item| !is_null(item))
            .map_or(ValueKind::Text, |item| value_kind(item, components)),
        RefOr::T(Schema::Array(array)) => match &array.items {
            ArrayItems::RefOrSchema(items) => {
                ValueKind::List(Box::new(value_kind(items, components)))
            }
            ArrayItems::False => ValueKind::Text,
        },
        RefOr::T(Schema::Object(object)) if !object.properties.is_empty() => ValueKind::Object,
        RefOr::T(Schema::Object(object)) => {
            let types: Vec<&Type> = match &object.schema_type {
                SchemaType::Type(t) => vec![t],
                SchemaType::Array(types) => types.iter().collect(),
                SchemaType::AnyValue => Vec::new(),
            };
            match types.into_iter().find(|t| **t != Type::Null) {
                Some(Type::Integer) => ValueKind::Integer,
                Some(Type::Number) => ValueKind::Number,
                Some(Type::Boolean) => ValueKind::Boolean,
                Some(Type::Object) => ValueKind::Object,
                _ => ValueKind::Text,
            }
        }
        RefOr::T(_) => ValueKind::Text,
    }
}

/// The members of `T` (its `#[serde(flatten)]`ed parts merged), in name order.
pub fn member_names<T: ToSchema>() -> Vec<String> {
    merged::<T>().object.properties.keys().cloned().collect()
}

#[cfg(test)]
mod tests {
    //! For every writable resource, its body's uses agree: the create and patch schemas, the
    //! shape, the decoder and the CSV columns; and every bound the create schema states is
    //! where the validation draws it.

    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::{json, Map, Value as Json};

    use super::*;
    use crate::error::ApiError;
    use crate::http::machinery::list::ListKind;
    use crate::http::machinery::record::Resource;
    use crate::http::resources::{companies, universities};

    /// A schema and the components it names, as JSON.
    struct Doc {
        root: Json,
        components: BTreeMap<String, Json>,
    }

    impl Doc {
        fn of<T: ToSchema>() -> Self {
            let mut components = Components::new();
            T::schemas(&mut components);
            Self {
                root: json_of(&T::schema()),
                components: components
                    .into_iter()
                    .map(|(name, schema)| (name, json_of(&schema)))
                    .collect(),
            }
        }

        /// `schema` with `$ref`s and `null` alternatives looked through.
        fn resolve<'a>(&'a self, schema: &'a Json) -> &'a Json {
            if let Some(name) = schema["$ref"].as_str() {
                let name = name.rsplit('/').next().unwrap_or(name);
                return self.resolve(&self.components[name]);
            }
            if let Some(items) = schema["oneOf"].as_array() {
                if let Some(item) = items.iter().find(|i| i["type"] != "null") {
                    return self.resolve(item);
                }
            }
            schema
        }

        /// Every object schema reachable from the root.
        fn objects(&self) -> Vec<&Json> {
            fn walk<'a>(schema: &'a Json, out: &mut Vec<&'a Json>) {
                match schema {
                    Json::Object(map) => {
                        if map.contains_key("properties") {
                            out.push(schema);
                        }
                        map.values().for_each(|v| walk(v, out));
                    }
                    Json::Array(items) => items.iter().for_each(|v| walk(v, out)),
                    _ => {}
                }
            }
            let mut out = Vec::new();
            walk(&self.root, &mut out);
            self.components.values().for_each(|c| walk(c, &mut out));
            out
        }
    }

    fn json_of(schema: &RefOr<Schema>) -> Json {
        serde_json::to_value(schema).expect("a schema serialises")
    }

    fn names(object: &Json) -> BTreeSet<String> {
        object["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn nullable(schema: &Json) -> bool {
        let types = &schema["type"];
        types == "null"
            || types.as_array().is_some_and(|t| t.contains(&json!("null")))
            || schema["oneOf"]
                .as_array()
                .is_some_and(|items| items.iter().any(|i| i["type"] == "null"))
    }

    /// The response's members as CSV columns: an object-valued member as `member_field`s.
    fn flattened<T: ToSchema>() -> BTreeSet<String> {
        let doc = Doc::of::<T>();
        let served = merged::<T>().object;
        let mut out = BTreeSet::new();
        for (name, member) in &served.properties {
            let member = doc.resolve(&json_of(member)).clone();
            if member["type"] == "object" || member["properties"].is_object() {
                for field in names(&member) {
                    out.insert(format!("{name}_{field}"));
                }
            } else {
                out.insert(name.clone());
            }
        }
        out
    }

    fn errors_of(result: Result<impl Sized, ApiError>) -> Vec<(String, String)> {
        match result {
            Ok(_) => Vec::new(),
            Err(ApiError::Validation(errors)) => errors
                .into_iter()
                .map(|e| (e.field, e.code.into_owned()))
                .collect(),
            Err(other) => panic!("not a validation error: {other:?}"),
        }
    }

    /// The agreement, for resource `R` whose request schemas are `C` and `P` and whose lists
    /// export `csv` columns.
    fn agree<R: Resource, C: ToSchema, P: ToSchema>(csv: &[&str]) {
        let what = std::any::type_name::<R>();
        let shape = R::shape();
        let writable: BTreeSet<String> = shape.members.iter().map(|m| m.name.clone()).collect();
        let (create, patch) = (Doc::of::<C>(), Doc::of::<P>());

        assert_eq!(
            names(&create.root),
            writable,
            "{what}: create schema vs shape"
        );
        // Members fixed at creation: written by a create, left out of a patch, and refused in
        // one by the same list.
        let fixed: BTreeSet<String> = R::FIXED.iter().map(|f| (*f).to_owned()).collect();
        assert!(fixed.is_subset(&writable), "{what}: FIXED names no member");
        let patchable: BTreeSet<String> = writable.difference(&fixed).cloned().collect();
        assert_eq!(
            names(&patch.root),
            patchable,
            "{what}: patch schema vs shape less FIXED"
        );
        let patch_shape = R::patch_shape();
        assert_eq!(
            patch_shape
                .members
                .iter()
                .map(|m| m.name.clone())
                .collect::<BTreeSet<_>>(),
            patchable,
            "{what}: patch shape"
        );
        assert_eq!(
            patch_shape.fixed.iter().cloned().collect::<BTreeSet<_>>(),
            fixed,
            "{what}: patch shape's fixed members"
        );
        for name in &fixed {
            let mut patch = Map::new();
            patch.insert(name.clone(), json!(null));
            let refused = match patch_shape.check(&patch) {
                Err(ApiError::Validation(errors)) => errors
                    .iter()
                    .any(|e| e.field == format!("/{name}") && e.code == "read_only"),
                _ => false,
            };
            assert!(refused, "{what}: a patch naming `{name}` is refused");
        }
        for doc in [&create, &patch] {
            for object in doc.objects() {
                assert_eq!(
                    object["additionalProperties"],
                    json!(false),
                    "{what}: an open object in a request schema: {object}"
                );
            }
        }
        let required: BTreeSet<String> = create.root["required"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|n| n.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            patch.root.get("required").is_none(),
            "{what}: a patch requires nothing"
        );
        for name in &patchable {
            let (c, p) = (
                &create.root["properties"][name],
                &patch.root["properties"][name],
            );
            if required.contains(name) {
                assert!(
                    !nullable(c) && !nullable(p),
                    "{what}: required `{name}` is never null"
                );
            } else {
                assert!(
                    nullable(p),
                    "{what}: `{name}` is cleared by null in a patch"
                );
            }
        }

        // A patch merges into the record as served, less its read-only members: what a patch
        // may carry is served (a member fixed at creation may be write-only, as a password).
        let served: BTreeSet<String> = member_names::<R::Response>().into_iter().collect();
        let patchable: BTreeSet<String> = writable
            .iter()
            .filter(|m| !R::FIXED.contains(&m.as_str()))
            .cloned()
            .collect();
        assert!(
            patchable.is_subset(&served),
            "{what}: a member a patch may carry is not served"
        );
        let read_only: BTreeSet<String> = shape.read_only.iter().cloned().collect();
        assert_eq!(
            read_only,
            served.difference(&writable).cloned().collect(),
            "{what}: read-only members"
        );

        // The decoder reads every member the schema names: one of the wrong type is refused
        // at its own pointer (a member it did not know would be ignored).
        for name in &writable {
            let mut body = Map::new();
            body.insert(name.clone(), json!([{"probe": true}]));
            let errors = errors_of(R::validate(body));
            let decoded = ["invalid_type", "unknown_value"]
                .iter()
                .any(|code| errors.contains(&(format!("/{name}"), (*code).into())));
            assert!(decoded, "{what}: `{name}` of the wrong type: {errors:?}");
        }

        // Components a request and a response share are one schema.
        let mut response = Components::new();
        R::Response::schemas(&mut response);
        for (name, schema) in response {
            if let Some(request) = create.components.get(&name) {
                assert_eq!(
                    request,
                    &json_of(&schema),
                    "{what}: two schemas named {name}"
                );
            }
        }

        let columns: BTreeSet<String> = csv.iter().map(|c| (*c).to_owned()).collect();
        assert_eq!(columns.len(), csv.len(), "{what}: a CSV column twice");
        assert_eq!(columns, flattened::<R::Response>(), "{what}: CSV columns");
    }

    /// A value `schema` allows, the `i`th of its kind (distinct values for distinct `i`): the
    /// least one, with only the required members of objects.
    fn example(doc: &Doc, schema: &Json, i: usize) -> Json {
        let schema = doc.resolve(schema);
        if let Some(values) = schema["enum"].as_array() {
            return values[i % values.len()].clone();
        }
        let types: Vec<&str> = match &schema["type"] {
            Json::String(t) => vec![t.as_str()],
            Json::Array(t) => t.iter().filter_map(Json::as_str).collect(),
            _ => vec![],
        };
        let number = |key: &str| schema[key].as_u64().map(|n| n as usize);
        match types.iter().find(|t| **t != "null").copied() {
            Some("object") => {
                let mut out = Map::new();
                for name in schema["required"].as_array().into_iter().flatten() {
                    let name = name.as_str().expect("a name");
                    out.insert(name.into(), example(doc, &schema["properties"][name], i));
                }
                Json::Object(out)
            }
            Some("array") => {
                let n = number("minItems").unwrap_or(0);
                Json::Array(
                    (0..n)
                        .map(|k| example(doc, &schema["items"], i + k))
                        .collect(),
                )
            }
            Some("integer") => json!(schema["minimum"].as_i64().unwrap_or(0) + i as i64),
            Some("boolean") => json!(false),
            // A web address's pattern starts with its scheme (domain::webhook::TargetUrl).
            Some("string")
                if schema["pattern"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("^https://")) =>
            {
                json!(format!("https://a{i}.example.org/"))
            }
            // An e-mail's pattern wants an `@` and a domain (domain::Email).
            Some("string") if schema["pattern"].as_str().is_some_and(|p| p.contains('@')) => {
                json!(format!("a{i}@example.org"))
            }
            Some("string") => match schema["format"].as_str() {
                Some("uuid") => json!(uuid::Uuid::from_u128(i as u128 + 1)),
                Some("date") => json!("2024-01-01"),
                _ => {
                    let mut s = format!("a{i}");
                    while s.chars().count() < number("minLength").unwrap_or(0) {
                        s.push('a');
                    }
                    json!(s)
                }
            },
            other => panic!("no example for {other:?}: {schema}"),
        }
    }

    /// `n` distinct items for the list `schema`.
    fn items(doc: &Doc, schema: &Json, n: usize) -> Json {
        Json::Array((0..n).map(|i| example(doc, &schema["items"], i)).collect())
    }

    /// Each stated bound of each member of `C` (the create schema of `R`), probed on the
    /// least valid body: the bound itself is accepted, one step beyond it is refused there.
    fn bounds_hold<R: Resource, C: ToSchema>() {
        let what = std::any::type_name::<R>();
        let doc = Doc::of::<C>();
        let Json::Object(least) = example(&doc, &doc.root, 0) else {
            panic!("{what}: a body is an object");
        };
        assert_eq!(
            errors_of(R::validate(least.clone())),
            vec![],
            "{what}: {least:?}"
        );
        let members = doc.root["properties"].as_object().expect("properties");
        let mut probed = 0;
        for (name, member) in members {
            let member = doc.resolve(member);
            let pointer = format!("/{name}");
            let mut probes: Vec<(Json, bool)> = Vec::new();
            if let Some(min) = member["minimum"].as_i64() {
                probes.extend([(json!(min), true), (json!(min - 1), false)]);
            }
            if let Some(max) = member["maximum"].as_i64() {
                probes.extend([(json!(max), true), (json!(max + 1), false)]);
            }
            let plain = member["format"].is_null()
                && member["pattern"]
                    .as_str()
                    .is_none_or(|p| regex::Regex::new(p).expect("pattern").is_match("aaaaa"));
            if plain {
                if let Some(max) = member["maxLength"].as_u64() {
                    let max = max as usize;
                    probes.extend([
                        (json!("a".repeat(max)), true),
                        (json!("a".repeat(max + 1)), false),
                    ]);
                }
                if let Some(min) = member["minLength"].as_u64().filter(|m| *m > 1) {
                    let min = min as usize;
                    probes.extend([
                        (json!("a".repeat(min)), true),
                        (json!("a".repeat(min - 1)), false),
                    ]);
                }
            }
            if let Some(max) = member["maxItems"].as_u64() {
                let max = max as usize;
                probes.extend([
                    (items(&doc, member, max), true),
                    (items(&doc, member, max + 1), false),
                ]);
            }
            if let Some(min) = member["minItems"].as_u64().filter(|m| *m > 0) {
                let min = min as usize;
                probes.extend([
                    (items(&doc, member, min), true),
                    (items(&doc, member, min - 1), false),
                ]);
            }
            for (value, accepted) in probes {
                probed += 1;
                let mut body = least.clone();
                body.insert(name.clone(), value.clone());
                let errors = errors_of(R::validate(body));
                let here = errors.iter().any(|(field, _)| field.starts_with(&pointer));
                assert_eq!(
                    !here,
                    accepted,
                    "{what}: `{name}` = {value} should be {}: {errors:?}",
                    if accepted { "accepted" } else { "refused" }
                );
            }
        }
        assert!(probed > 0, "{what}: no bound probed");
    }

    /// Whether the member `schema` admits the blank string `blank`: its lengths, patterns and
    /// enums, through `anyOf`; a blank string has no format (no e-mail, URL, date or id is
    /// blank).
    fn admits_blank(doc: &Doc, schema: &Json, blank: &str) -> bool {
        let schema = doc.resolve(schema);
        let types = &schema["type"];
        let string = types.is_null()
            || types == "string"
            || types
                .as_array()
                .is_some_and(|t| t.contains(&json!("string")));
        if let Some(alternatives) = schema["anyOf"].as_array() {
            return string && alternatives.iter().any(|a| admits_blank(doc, a, blank));
        }
        let length = blank.chars().count() as u64;
        string
            && schema["format"].is_null()
            && schema["maxLength"].as_u64().is_none_or(|max| length <= max)
            && schema["minLength"].as_u64().is_none_or(|min| length >= min)
            && schema["pattern"].as_str().is_none_or(|p| {
                regex::Regex::new(p)
                    .unwrap_or_else(|e| panic!("{p}: {e}"))
                    .is_match(blank)
            })
            && schema["enum"]
                .as_array()
                .is_none_or(|values| values.contains(&json!(blank)))
    }

    /// Whether `schema` (resolved) describes a string, possibly among other types.
    fn stringy(schema: &Json) -> bool {
        let types = &schema["type"];
        types == "string"
            || types
                .as_array()
                .is_some_and(|t| t.contains(&json!("string")))
    }

    /// For every optional string member of `S` (a create or patch schema of `R`), and of its
    /// nested objects: blank text is admitted by the schema exactly when the server takes it
    /// (as absent), on the least valid body.
    fn blank_agrees<R: Resource, C: ToSchema, S: ToSchema>() {
        let what = std::any::type_name::<S>();
        let least = {
            let doc = Doc::of::<C>();
            let Json::Object(least) = example(&doc, &doc.root, 0) else {
                panic!("{what}: a body is an object");
            };
            least
        };
        let doc = Doc::of::<S>();
        let required = |object: &Json, name: &str| {
            object["required"]
                .as_array()
                .is_some_and(|r| r.contains(&json!(name)))
        };
        // (pointer, outer member, inner member, schema) of each optional string member.
        let mut members: Vec<(String, String, Option<String>, Json)> = Vec::new();
        for (name, member) in doc.root["properties"].as_object().expect("properties") {
            if required(&doc.root, name) {
                continue;
            }
            let resolved = doc.resolve(member);
            if stringy(resolved) {
                members.push((format!("/{name}"), name.clone(), None, member.clone()));
            }
            if let Some(inner) = resolved["properties"].as_object() {
                for (field, schema) in inner {
                    if !required(resolved, field) && stringy(doc.resolve(schema)) {
                        members.push((
                            format!("/{name}/{field}"),
                            name.clone(),
                            Some(field.clone()),
                            schema.clone(),
                        ));
                    }
                }
            }
        }
        assert!(!members.is_empty(), "{what}: no optional string member");
        // The server trims text before it checks it, and a format reads the value as sent: a
        // format on text would refuse what the server takes.
        for (pointer, _, _, schema) in &members {
            let format = doc.resolve(schema)["format"].as_str().map(str::to_owned);
            assert!(
                format.as_deref().is_none_or(|f| TYPED_FORMATS.contains(&f)),
                "{what}: `{pointer}` is text with format {format:?}; state the rule as a pattern"
            );
        }
        for (pointer, outer, inner, schema) in &members {
            for blank in ["", " \t\u{a0}"] {
                let mut body = least.clone();
                let value = match inner {
                    None => json!(blank),
                    Some(inner) => json!({ inner.as_str(): blank }),
                };
                body.insert(outer.clone(), value);
                let errors = errors_of(R::validate(body));
                let accepted = !errors.iter().any(|(field, _)| field == pointer);
                assert_eq!(
                    admits_blank(&doc, schema, blank),
                    accepted,
                    "{what}: `{pointer}` = {blank:?}: the server {} it: {errors:?}",
                    if accepted { "accepts" } else { "refuses" }
                );
            }
        }
    }

    /// The checks, on one writable resource.
    struct Checks;

    impl crate::http::routes::EachResource for Checks {
        fn visit<R>(&mut self)
        where
            R: Resource + ListKind,
            R::Body: Bodies,
        {
            type Create<R> = <<R as Resource>::Body as Bodies>::Create;
            type Patch<R> = <<R as Resource>::Body as Bodies>::Patch;
            agree::<R, Create<R>, Patch<R>>(R::CSV_COLUMNS);
            bounds_hold::<R, Create<R>>();
            blank_agrees::<R, Create<R>, Create<R>>();
            blank_agrees::<R, Create<R>, Patch<R>>();
        }
    }

    /// For every writable resource the route table declares (a new one is checked as soon as
    /// its routes are): its body's uses agree (the create and patch schemas, the shape, the
    /// decoder and the CSV columns), every bound its create schema states is where the
    /// validation draws it, and blank optional text is admitted where the server takes it as
    /// absent (a format or an enum as much as a pattern; dates and ids are not text).
    #[test]
    fn every_resource_the_routes_declare_agrees_with_its_body() {
        let checked = crate::http::routes::each_resource(Checks);
        for entity in [
            "company",
            "irccs",
            "university",
            "partner",
            "goal",
            "activity",
            "goal_activity_link",
            "goal_partner",
            "activity_participant",
        ] {
            assert!(checked.contains(&entity), "{entity} was not checked");
        }
    }

    /// A patch of a nested object whose create schema requires a member gets its own
    /// component; one that requires none (an address) keeps its schema.
    #[test]
    fn nested_objects_get_a_patch_schema_only_when_they_need_one() {
        let (_, added) = patch::<crate::domain::organisation::CompanyBody>("CreateCompany", &[]);
        assert!(
            added.is_empty(),
            "{:?}",
            added.iter().map(|(n, _)| n).collect::<Vec<_>>()
        );
        let patch = json_of(&<companies::CompanyPatch as utoipa::PartialSchema>::schema());
        assert_eq!(
            patch["properties"]["address"]["oneOf"][1]["$ref"],
            "#/components/schemas/AddressInput"
        );
    }

    #[test]
    fn shapes_reach_into_nested_objects_and_list_items() {
        let shape = <universities::Universities as Resource>::shape();
        let nested = |name: &str| {
            shape
                .members
                .iter()
                .find(|m| m.name == name)
                .and_then(|m| m.nested.clone())
                .unwrap_or_else(|| panic!("{name} has a shape"))
        };
        let rankings = nested("rankings");
        let names: Vec<&str> = rankings.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["area", "rank", "source", "year"]);
        let address = nested("address");
        assert_eq!(address.members.len(), 5);
        assert!(shape.is_read_only("version") && !shape.is_read_only("name"));
    }
}
