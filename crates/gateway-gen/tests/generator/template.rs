//! Path templates: what `Template::parse` makes of each form of the
//! `google.api.http` grammar, the reason it gives for a malformed one, and
//! the axum route and OpenAPI path of each.

use gostream_gateway_gen::template::{Segment, Template, TemplateError, Variable};

fn parse(template: &str) -> Template {
    Template::parse(template).unwrap_or_else(|e| panic!("{template} parses: {e}"))
}

fn lit(s: &str) -> Segment {
    Segment::Literal(s.to_owned())
}

fn var(field: &str, start: usize, end: usize) -> Variable {
    Variable {
        field: field.to_owned(),
        start,
        end,
    }
}

/// The reason `template` is rejected.
fn reason(template: &str) -> String {
    match Template::parse(template) {
        Ok(parsed) => panic!("{template} should not parse, got {parsed:?}"),
        Err(TemplateError {
            template: got,
            reason,
        }) => {
            assert_eq!(got, template, "the error names the template");
            reason
        }
    }
}

#[test]
fn literals_only() {
    let t = parse("/v1/shelves");
    assert_eq!(t.segments, [lit("v1"), lit("shelves")]);
    assert_eq!(t.verb, None);
    assert!(t.variables.is_empty());
    assert_eq!(t.literals(), 2);
}

#[test]
fn a_plain_variable_is_one_wildcard_segment() {
    let t = parse("/v1/shelves/{shelf}/books/{book}");
    assert_eq!(
        t.segments,
        [
            lit("v1"),
            lit("shelves"),
            Segment::Any,
            lit("books"),
            Segment::Any
        ]
    );
    assert_eq!(t.variables, [var("shelf", 2, 3), var("book", 4, 5)]);
    assert_eq!(t.literals(), 3);
}

#[test]
fn a_nested_field_path_is_kept_dotted() {
    let t = parse("/v1/shelves/{shelf.name}");
    assert_eq!(t.segments, [lit("v1"), lit("shelves"), Segment::Any]);
    assert_eq!(t.variables, [var("shelf.name", 2, 3)]);
}

#[test]
fn a_variable_with_a_pattern_covers_several_segments() {
    let t = parse("/v1/{name=shelves/*/books/*}");
    assert_eq!(
        t.segments,
        [
            lit("v1"),
            lit("shelves"),
            Segment::Any,
            lit("books"),
            Segment::Any
        ]
    );
    assert_eq!(t.variables, [var("name", 1, 5)]);
    assert_eq!(parse("/v1/{name=*}"), parse("/v1/{name}"));
}

#[test]
fn double_star_takes_the_rest_of_the_path() {
    let t = parse("/v1/files/{path=**}");
    assert_eq!(t.segments, [lit("v1"), lit("files"), Segment::Rest]);
    assert_eq!(t.variables, [var("path", 2, 3)]);
    let bare = parse("/static/**");
    assert_eq!(bare.segments, [lit("static"), Segment::Rest]);
    assert!(bare.variables.is_empty());
}

#[test]
fn a_custom_verb_is_split_off() {
    let t = parse("/v1/things/{name}:archive");
    assert_eq!(t.segments, [lit("v1"), lit("things"), Segment::Any]);
    assert_eq!(t.verb.as_deref(), Some("archive"));
    assert_eq!(t.variables, [var("name", 2, 3)]);

    let t = parse("/v1/things:batchGet");
    assert_eq!(t.segments, [lit("v1"), lit("things")]);
    assert_eq!(t.verb.as_deref(), Some("batchGet"));

    let t = parse("/v1/{name=shelves/*/books/*}:move");
    assert_eq!(t.variables, [var("name", 1, 5)]);
    assert_eq!(t.verb.as_deref(), Some("move"));
}

#[test]
fn literal_segments_may_hold_unreserved_and_sub_delimiter_characters() {
    let t = parse("/v1/a-b_c.d~e/x%20y");
    assert_eq!(t.segments, [lit("v1"), lit("a-b_c.d~e"), lit("x%20y")]);
}

#[test]
fn a_template_must_start_with_a_slash() {
    assert_eq!(reason("v1/things"), "must start with '/'");
    assert_eq!(reason(""), "must start with '/'");
}

#[test]
fn an_unterminated_variable_is_rejected() {
    assert_eq!(reason("/v1/{name"), "unterminated variable");
    assert_eq!(reason("/v1/{name=things/*"), "unterminated variable");
    assert_eq!(
        reason("/v1/{name}x"),
        "a variable must be a whole segment, not \"{name}x\""
    );
    assert_eq!(reason("/v1/name}"), "unbalanced '}'");
}

#[test]
fn variables_cannot_nest() {
    assert_eq!(reason("/v1/{a={b}}"), "variables cannot nest");
    assert_eq!(reason("/v1/{a=x/{b}/y}"), "variables cannot nest");
}

#[test]
fn double_star_must_be_last() {
    assert_eq!(reason("/v1/**/x"), "`**` must be the last segment");
    assert_eq!(reason("/v1/{path=**}/x"), "`**` must be the last segment");
    assert_eq!(reason("/v1/**/**"), "`**` must be the last segment");
}

#[test]
fn empty_segments_are_rejected() {
    assert_eq!(reason("/"), "empty segment");
    assert_eq!(reason("/v1//things"), "empty segment");
    assert_eq!(reason("/v1/things/"), "empty segment");
    assert_eq!(reason("/v1/{name=}"), "empty segment");
    assert_eq!(reason("/v1/{name=a//b}"), "empty segment");
}

#[test]
fn a_verb_must_be_a_non_empty_literal() {
    assert_eq!(reason("/v1/things:"), "\"\" is not a valid verb");
    assert_eq!(reason("/v1/things/{name}:"), "\"\" is not a valid verb");
    assert_eq!(reason("/v1/things:a*b"), "\"a*b\" is not a valid verb");
    assert_eq!(reason("/v1/things:a=b"), "\"a=b\" is not a valid verb");
}

#[test]
fn bad_literals_and_field_paths_are_rejected() {
    assert_eq!(
        reason("/v1/a:b/c"),
        "\"a:b\" is not a valid literal segment"
    );
    assert_eq!(
        reason("/v1/x{name}"),
        "\"x{name}\" is not a valid literal segment"
    );
    assert_eq!(reason("/v1/{}"), "\"\" is not a field path");
    assert_eq!(reason("/v1/{1name}"), "\"1name\" is not a field path");
    assert_eq!(reason("/v1/{a..b}"), "\"a..b\" is not a field path");
    assert_eq!(reason("/v1/{a-b}"), "\"a-b\" is not a field path");
    assert_eq!(reason("/v1/{=x}"), "\"\" is not a field path");
    assert_eq!(reason("/v1/{a}/{a}"), "variable \"a\" appears twice");
}

#[test]
fn the_error_displays_the_template_and_the_reason() {
    let error = Template::parse("/v1//x").unwrap_err();
    assert_eq!(error.to_string(), "path template \"/v1//x\": empty segment");
}

#[test]
fn axum_routes_capture_each_wildcard_by_position() {
    let cases = [
        ("/v1/shelves", "/v1/shelves"),
        ("/v1/shelves/{name}", "/v1/shelves/{p2}"),
        ("/v1/shelves/{shelf.name}/books", "/v1/shelves/{p2}/books"),
        (
            "/v1/{name=shelves/*/books/*}",
            "/v1/shelves/{p2}/books/{p4}",
        ),
        ("/v1/{parent=shelves/*}/books", "/v1/shelves/{p2}/books"),
        ("/v1/files/{path=**}", "/v1/files/{*p2}"),
        ("/static/**", "/static/{*p1}"),
        ("/v1/*/things", "/v1/{p1}/things"),
    ];
    for (template, route) in cases {
        assert_eq!(parse(template).axum_route(), route, "{template}");
    }
}

#[test]
fn axum_routes_keep_a_verb_only_after_a_literal() {
    // After a literal the verb is part of a static segment.
    assert_eq!(parse("/v1/things:touch").axum_route(), "/v1/things:touch");
    // After a wildcard the router cannot split the segment: the verb is
    // left to the handler, and the route is that of the plain template.
    let verb = parse("/v1/things/{name}:archive");
    assert_eq!(verb.axum_route(), "/v1/things/{p2}");
    assert_eq!(verb.axum_route(), parse("/v1/things/{name}").axum_route());
    assert_eq!(
        parse("/v1/{name=shelves/*/books/*}:move").axum_route(),
        "/v1/shelves/{p2}/books/{p4}"
    );
    assert_eq!(
        parse("/v1/files/{path=**}:get").axum_route(),
        "/v1/files/{*p2}"
    );
}

#[test]
fn the_routes_of_the_fixture_register_in_one_axum_router() {
    let mut routes: Vec<String> = crate::shop_bindings()
        .iter()
        .map(|b| b.template.axum_route())
        .collect();
    routes.sort();
    routes.dedup();
    let mut router = axum::Router::<()>::new();
    for route in &routes {
        // axum panics on a route it cannot parse or that conflicts.
        router = router.route(route, axum::routing::any(|| async {}));
    }
    drop(router);
    assert_eq!(routes.len(), 11, "{routes:#?}");
}

#[test]
fn openapi_paths_name_each_wildcard_of_a_variable() {
    let cases = [
        ("/v1/shelves", "/v1/shelves"),
        ("/v1/shelves/{name}", "/v1/shelves/{name}"),
        ("/v1/shelves/{shelf.name}/books", "/v1/shelves/{name}/books"),
        (
            "/v1/{name=shelves/*/books/*}",
            "/v1/shelves/{name_1}/books/{name_2}",
        ),
        ("/v1/{parent=shelves/*}/books", "/v1/shelves/{parent}/books"),
        (
            "/v1/{name=shelves/*/books/*}:move",
            "/v1/shelves/{name_1}/books/{name_2}:move",
        ),
        ("/v1/things/{name}:archive", "/v1/things/{name}:archive"),
        ("/v1/things:touch", "/v1/things:touch"),
        ("/v1/files/{path=**}", "/v1/files/{path}"),
        ("/static/**", "/static/**"),
        ("/v1/*/things", "/v1/*/things"),
    ];
    for (template, path) in cases {
        assert_eq!(parse(template).openapi_path(), path, "{template}");
    }
}
