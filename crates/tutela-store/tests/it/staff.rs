//! Staff accounts and console sessions: unique usernames, disabling and password resets end
//! sessions, failed sign-ins count and lock, sessions are found only by the hash they were
//! opened with and only while live.

use tutela_store::{NewStaff, StaffRole, StoreError};

use crate::support::{both, t};

fn new(username: &str, role: StaffRole) -> NewStaff {
    NewStaff {
        username: username.into(),
        display_name: format!("{username} (display)"),
        role,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        at: t(10),
    }
}

#[tokio::test]
async fn accounts_are_unique_listed_and_found() {
    for ts in both().await {
        let s = ts.store.staff();
        let ann = s.add_staff(&new("ann", StaffRole::Agent)).await.unwrap();
        let bob = s
            .add_staff(&new("bob", StaffRole::Supervisor))
            .await
            .unwrap();
        assert_eq!(ann.role, StaffRole::Agent, "{}", ts.name);
        assert_eq!(ann.created_at, t(10));
        assert!(ann.is_active());
        let again = s.add_staff(&new("ann", StaffRole::Admin)).await;
        assert!(
            matches!(again, Err(StoreError::Conflict { .. })),
            "{again:?}"
        );
        assert_eq!(s.staff_by_username("bob").await.unwrap(), Some(bob.clone()));
        assert_eq!(s.staff_by_id(ann.id).await.unwrap(), Some(ann.clone()));
        assert_eq!(s.staff_by_username("nobody").await.unwrap(), None);
        let names: Vec<String> = s
            .list_staff()
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.username)
            .collect();
        assert_eq!(names, ["ann", "bob"]);
        // The hash is never serialised.
        let json = serde_json::to_string(&ann).unwrap();
        assert!(!json.contains("argon2"), "{json}");
    }
}

#[tokio::test]
async fn sessions_live_until_ended_disabled_or_reset() {
    for ts in both().await {
        let s = ts.store.staff();
        let ann = s.add_staff(&new("ann", StaffRole::Agent)).await.unwrap();
        s.open_staff_session("h1", ann.id, "csrf1", t(20))
            .await
            .unwrap();
        let live = s.staff_session("h1").await.unwrap().unwrap();
        assert_eq!((live.staff.id, live.csrf.as_str()), (ann.id, "csrf1"));
        assert_eq!((live.created_at, live.last_seen_at), (t(20), t(20)));
        assert_eq!(s.staff_session("h2").await.unwrap(), None, "{}", ts.name);
        s.touch_staff_session("h1", t(30)).await.unwrap();
        // Time never goes back.
        s.touch_staff_session("h1", t(25)).await.unwrap();
        assert_eq!(
            s.staff_session("h1").await.unwrap().unwrap().last_seen_at,
            t(30)
        );
        s.end_staff_session("h1", t(40)).await.unwrap();
        assert_eq!(s.staff_session("h1").await.unwrap(), None);

        s.open_staff_session("h3", ann.id, "c", t(50))
            .await
            .unwrap();
        let off = s.set_staff_disabled(ann.id, true, t(60)).await.unwrap();
        assert_eq!(off.disabled_at, Some(t(60)));
        assert_eq!(s.staff_session("h3").await.unwrap(), None);
        let on = s.set_staff_disabled(ann.id, false, t(70)).await.unwrap();
        assert!(on.is_active());
        // A session ended by disabling stays ended.
        assert_eq!(s.staff_session("h3").await.unwrap(), None);

        s.open_staff_session("h4", ann.id, "c", t(80))
            .await
            .unwrap();
        let reset = s
            .set_staff_password(ann.id, "new-hash", t(90))
            .await
            .unwrap();
        assert_eq!(reset.password_hash, "new-hash");
        assert_eq!(reset.password_changed_at, t(90));
        assert_eq!(s.staff_session("h4").await.unwrap(), None);
        let missing = s.set_staff_disabled(999, true, t(1)).await;
        assert!(matches!(missing, Err(StoreError::NotFound { .. })));
    }
}

#[tokio::test]
async fn failed_logins_count_lock_and_clear() {
    for ts in both().await {
        let s = ts.store.staff();
        let ann = s.add_staff(&new("ann", StaffRole::Agent)).await.unwrap();
        s.record_failed_login(ann.id, None).await.unwrap();
        s.record_failed_login(ann.id, Some(t(500))).await.unwrap();
        let locked = s.staff_by_id(ann.id).await.unwrap().unwrap();
        assert_eq!(
            (locked.failed_logins, locked.locked_until),
            (2, Some(t(500))),
            "{}",
            ts.name
        );
        s.open_staff_session("h", ann.id, "c", t(600))
            .await
            .unwrap();
        let clear = s.staff_by_id(ann.id).await.unwrap().unwrap();
        assert_eq!((clear.failed_logins, clear.locked_until), (0, None));
    }
}
