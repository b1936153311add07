//! What ONBUILD triggers name: `COPY --from` / `RUN --mount from=` in a trigger is a stage of the child
//! Dockerfile when one has that name (BuildKit's dockerfile2llb `initOnBuildTriggers` → `toCommand`),
//! else an image; images named only in triggers are listed by the plan once the base is known, for
//! pulling before the build; triggers' RUNs need their entitlements too.

use lamina_builder::engine::{BuildError, Plan};

use crate::support::Env;

#[test]
fn trigger_copy_from_names_a_stage_of_the_child() {
    let e = Env::new();
    e.base("obf:1", "FROM scratch\nONBUILD COPY --from=assets /a /a\n");
    // `assets` is reachable only through the trigger: it still runs, first.
    let b = e.build("FROM scratch AS assets\nRUN write /a child\nFROM obf:1\nRUN write /own 1\n");
    assert_eq!(b.read("/a").as_deref(), Some("child"));
    assert!(b.exists("/own"));
}

#[test]
fn trigger_copy_from_by_stage_index() {
    let e = Env::new();
    e.base("obf:2", "FROM scratch\nONBUILD COPY --from=0 /a /a\n");
    let b = e.build("FROM scratch\nRUN write /a zero\nFROM obf:2\n");
    assert_eq!(b.read("/a").as_deref(), Some("zero"));
}

#[test]
fn trigger_copy_from_without_such_a_stage_is_an_image() {
    let e = Env::new();
    e.base("assets-img:1", "FROM scratch\nRUN write /a image\n");
    e.base("obf:3", "FROM scratch\nONBUILD COPY --from=assets-img:1 /a /a\n");
    let b = e.build("FROM scratch AS other\nRUN write /a stage\nFROM obf:3\n");
    assert_eq!(b.read("/a").as_deref(), Some("image"));
}

#[test]
fn trigger_mount_from_names_a_stage_of_the_child() {
    let e = Env::new();
    e.base(
        "obf:4",
        "FROM scratch\nONBUILD RUN --mount=type=bind,from=data,target=/m cat /m/a\n",
    );
    let b = e.build("FROM scratch AS data\nRUN write /a from-data\nFROM obf:4\n");
    assert!(b.logs().iter().any(|l| l.contains("from-data")), "{:?}", b.logs());
}

#[test]
fn a_trigger_naming_its_own_stage_is_a_cycle() {
    let e = Env::new();
    e.base("obf:5", "FROM scratch\nONBUILD COPY --from=me /a /a\n");
    let err = e.build_err("FROM obf:5 AS me\n");
    assert!(matches!(err, BuildError::Parse(_)), "{}", err.to_string_chain());
    assert!(err.to_string().contains("ONBUILD trigger"), "{err}");
}

#[test]
fn the_plan_lists_images_named_only_in_triggers_once_the_base_is_known() {
    let e = Env::new();
    e.base(
        "obf:6",
        "FROM scratch\nONBUILD COPY --from=extra:1 /a /a\nONBUILD COPY --from=kid /b /b\n",
    );
    let req = e.req("FROM scratch AS kid\nRUN write /b 1\nFROM obf:6\n");
    let mut plan = Plan::new(&req).unwrap();
    let names = |p: &Plan| {
        p.external_images()
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&plan),
        ["obf:6"],
        "triggers unknown before the base is there"
    );
    assert!(
        plan.add_triggers(&e.store, &req).unwrap(),
        "the base's triggers changed the graph"
    );
    assert_eq!(names(&plan), ["extra:1", "obf:6"], "kid is a stage, not an image");
    assert!(
        !plan.add_triggers(&e.store, &req).unwrap(),
        "nothing new the second time"
    );
}

#[test]
fn a_base_missing_from_the_store_is_left_for_later() {
    let e = Env::new();
    let req = e.req("FROM not-pulled-yet:1\n");
    let mut plan = Plan::new(&req).unwrap();
    assert!(!plan.add_triggers(&e.store, &req).unwrap());
    assert_eq!(plan.external_images().unwrap().len(), 1);
}

#[test]
fn entitlements_are_checked_on_the_dockerfile_and_on_triggers() {
    let e = Env::new();
    let req = e.req("FROM scratch\nRUN true\nRUN --network=host true\n");
    let plan = Plan::new(&req).unwrap();
    let err = plan.check_entitlements(false, false).unwrap_err();
    assert!(matches!(err, BuildError::Entitlement { line: 3, .. }), "{err}");
    assert!(err.to_string().contains("pass --allow network.host"), "{err}");
    assert!(err.is_user_error());
    plan.check_entitlements(true, false).unwrap();

    e.base("obf:7", "FROM scratch\nONBUILD RUN --security=insecure true\n");
    let req = e.req("FROM scratch\n\nFROM obf:7\n");
    let mut plan = Plan::new(&req).unwrap();
    plan.check_entitlements(false, false).unwrap();
    plan.add_triggers(&e.store, &req).unwrap();
    let err = plan.check_entitlements(false, false).unwrap_err();
    // A trigger has the FROM's line.
    assert!(
        matches!(
            err,
            BuildError::Entitlement {
                line: 3,
                entitlement: "security.insecure",
                ..
            }
        ),
        "{err}"
    );
}
