//! Users: touch, get, update (every field), contacts, listing, registered counts and the notice
//! a user has not seen yet.

use tutela_store::{ContactAddress, DeferredNotice, StoreError, UserUpdate};
use tutela_types::{AgeAssurance, AgeState, Clock, ContactKind, MinorsSettings, QuietHours};

use crate::support::{both, t};

fn guardian(addr: &str) -> ContactAddress {
    ContactAddress {
        kind: ContactKind::Guardian,
        channel: "webhook".into(),
        address: addr.into(),
    }
}

#[tokio::test]
async fn touch_creates_once_and_keeps_first_seen() {
    for ts in both().await {
        let users = ts.store.users();
        assert_eq!(users.get_user("u1").await.unwrap(), None);
        let a = users.touch_user("u1", t(10)).await.unwrap();
        let b = users.touch_user("u1", t(20)).await.unwrap();
        assert_eq!(a, b, "{}", ts.name);
        assert_eq!(b.first_seen, t(10));
        assert_eq!(b.age_state, AgeState::Unknown);
        assert_eq!(b.registered_at, None);
        assert_eq!(users.get_user("u1").await.unwrap(), Some(b));
    }
}

#[tokio::test]
async fn update_changes_what_it_names_and_nothing_else() {
    for ts in both().await {
        let users = ts.store.users();
        users.touch_user("kid", t(0)).await.unwrap();
        let quiet = QuietHours {
            start: Clock::new(22, 0).unwrap(),
            end: Clock::new(6, 0).unwrap(),
        };
        let u = users
            .update_user(
                "kid",
                &UserUpdate {
                    registered_at: Some(t(5)),
                    age_state: Some(AgeState::KnownMinor),
                    age: Some(Some(14)),
                    age_assurance: Some(AgeAssurance::VerifiedDocument),
                    elderly: Some(false),
                    guardian_consent: Some(true),
                    jurisdiction: Some(Some("cn".into())),
                    utc_offset_minutes: Some(480),
                    minors: Some(MinorsSettings {
                        daily_minutes: Some(40),
                        quiet_hours: Some(quiet),
                    }),
                    contacts: Some(vec![
                        guardian("https://guardian.example/hook"),
                        ContactAddress {
                            kind: ContactKind::EmergencyContact,
                            channel: "email".into(),
                            address: "aunt@example.org".into(),
                        },
                    ]),
                },
                t(6),
            )
            .await
            .unwrap();
        assert_eq!(u.first_seen, t(0), "{}", ts.name);
        assert_eq!(u.registered_at, Some(t(5)));
        assert_eq!(u.age, Some(14));
        assert_eq!(u.minors.quiet_hours, Some(quiet));
        assert_eq!(u.contacts.len(), 2);
        assert_eq!(u.updated_at, t(6));
        let state = u.state();
        assert!(state.contacts.guardian && state.contacts.emergency);
        assert_eq!(state.utc_offset_minutes, 480);
        assert!(state.guardian_consent);
        assert_eq!(state.age_assurance, AgeAssurance::VerifiedDocument);
        assert_eq!(
            u.contacts_of(ContactKind::Guardian).next().unwrap().address,
            "https://guardian.example/hook"
        );

        // A later partial update: registration is kept, age cleared, contacts replaced.
        let u = users
            .update_user(
                "kid",
                &UserUpdate {
                    registered_at: Some(t(99)),
                    age: Some(None),
                    contacts: Some(vec![guardian("https://other.example/hook")]),
                    ..UserUpdate::default()
                },
                t(7),
            )
            .await
            .unwrap();
        assert_eq!(u.registered_at, Some(t(5)));
        assert_eq!(u.age, None);
        assert_eq!(u.age_state, AgeState::KnownMinor);
        assert_eq!(u.age_assurance, AgeAssurance::VerifiedDocument, "kept");
        assert_eq!(u.contacts, vec![guardian("https://other.example/hook")]);
        assert_eq!(users.get_user("kid").await.unwrap(), Some(u));
    }
}

#[tokio::test]
async fn update_creates_unknown_users_for_registration() {
    for ts in both().await {
        let u = ts
            .store
            .users()
            .update_user(
                "new",
                &UserUpdate {
                    registered_at: Some(t(3)),
                    ..UserUpdate::default()
                },
                t(3),
            )
            .await
            .unwrap();
        assert_eq!((u.first_seen, u.registered_at), (t(3), Some(t(3))));
    }
}

#[tokio::test]
async fn user_updates_parse_from_admin_json() {
    let u: UserUpdate = serde_json::from_str(
        r#"{"age_state":"suspected_minor","age":null,"jurisdiction":"us-ca",
            "contacts":[{"kind":"guardian","channel":"email","address":"g@example.org"}]}"#,
    )
    .unwrap();
    assert_eq!(u.age_state, Some(AgeState::SuspectedMinor));
    assert_eq!(u.age, Some(None));
    assert_eq!(u.jurisdiction, Some(Some("us-ca".into())));
    assert_eq!(u.elderly, None);
    let err = serde_json::from_str::<UserUpdate>(r#"{"agestate":"x"}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");
}

#[tokio::test]
async fn listing_pages_by_id() {
    for ts in both().await {
        let users = ts.store.users();
        for id in ["c", "a", "b", "d"] {
            users.touch_user(id, t(0)).await.unwrap();
        }
        let first: Vec<String> = users
            .list_users(None, 2)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(first, ["a", "b"], "{}", ts.name);
        let next: Vec<String> = users
            .list_users(Some("b"), 10)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(next, ["c", "d"]);
    }
}

#[tokio::test]
async fn registered_users_count_per_jurisdiction_as_of_an_instant() {
    for ts in both().await {
        let users = ts.store.users();
        for (id, j, at) in [
            ("a", "cn", 1),
            ("b", "cn", 2),
            ("c", "us-ca", 3),
            ("d", "cn", 9),
        ] {
            users
                .update_user(
                    id,
                    &UserUpdate {
                        registered_at: Some(t(at)),
                        jurisdiction: Some(Some(j.into())),
                        ..UserUpdate::default()
                    },
                    t(at),
                )
                .await
                .unwrap();
        }
        users.touch_user("unregistered", t(1)).await.unwrap();
        let (total, per) = users.registered_users(t(5)).await.unwrap();
        assert_eq!(total, 3, "{}", ts.name);
        assert_eq!(per, vec![("cn".into(), 2), ("us-ca".into(), 1)]);
        ts.store.delete_user("a", t(6)).await.unwrap();
        assert_eq!(users.registered_users(t(10)).await.unwrap().0, 3);
    }
}

#[tokio::test]
async fn deleting_an_unknown_user_is_not_found() {
    for ts in both().await {
        let err = ts.store.delete_user("ghost", t(0)).await.unwrap_err();
        assert!(
            matches!(err, StoreError::NotFound { what: "user", .. }),
            "{err}"
        );
    }
}

fn ai_notice() -> DeferredNotice {
    DeferredNotice {
        text: "You are talking to an AI, not a person.".into(),
        notices: vec![serde_json::json!({"contents": ["ai_identity"], "deferred": true})],
    }
}

#[tokio::test]
async fn a_deferred_notice_is_kept_until_cleared_and_exported_and_deleted_with_the_user() {
    for ts in both().await {
        let users = ts.store.users();
        users.touch_user("u-n", t(0)).await.unwrap();
        assert_eq!(users.deferred_notice("u-n").await.unwrap(), None);
        users
            .set_deferred_notice("u-n", Some(&ai_notice()), t(5))
            .await
            .unwrap();
        assert_eq!(
            users.deferred_notice("u-n").await.unwrap(),
            Some(ai_notice()),
            "{}",
            ts.name
        );
        // The user record itself is unchanged (the admin API's view).
        assert_eq!(
            users.get_user("u-n").await.unwrap().unwrap().updated_at,
            t(0)
        );
        let export = ts.store.export_user("u-n", t(6)).await.unwrap().unwrap();
        assert_eq!(export.deferred_notice, Some(ai_notice()));
        assert_eq!(export.deferred_notice_at, Some(t(5)));
        users.set_deferred_notice("u-n", None, t(7)).await.unwrap();
        assert_eq!(users.deferred_notice("u-n").await.unwrap(), None);
        // Deleting the user takes it along; a returning user starts without one.
        users
            .set_deferred_notice("u-n", Some(&ai_notice()), t(8))
            .await
            .unwrap();
        ts.store.delete_user("u-n", t(9)).await.unwrap();
        assert_eq!(users.deferred_notice("u-n").await.unwrap(), None);
        users.touch_user("u-n", t(10)).await.unwrap();
        assert_eq!(users.deferred_notice("u-n").await.unwrap(), None);
        let err = users
            .set_deferred_notice("ghost", Some(&ai_notice()), t(11))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::NotFound { what: "user", .. }),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_deferred_notice_survives_reopening_the_database() {
    let (store, path, _dir) = crate::support::file_store().await;
    store.users().touch_user("u-r", t(0)).await.unwrap();
    store
        .users()
        .set_deferred_notice("u-r", Some(&ai_notice()), t(1))
        .await
        .unwrap();
    store.close().await.unwrap();
    let store = tutela_store::Store::open(&path).await.unwrap();
    assert_eq!(
        store.users().deferred_notice("u-r").await.unwrap(),
        Some(ai_notice())
    );
}
