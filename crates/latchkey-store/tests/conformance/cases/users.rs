//! Users: insert, lookup, unique e-mail, paging, roles.

use latchkey_core::model::{Email, Role, UserId};
use latchkey_core::store::StoreError;

use crate::harness::{new_user, stored_user, Harness};

pub(crate) async fn user_insert_and_lookup(h: Harness) {
    let mut user = new_user("alice@example.com");
    user.roles = vec![
        Role::user(),
        Role::admin(),
        Role::parse("ops:read-only_v1.2").unwrap(),
    ];
    h.store.insert_user(&user).await.unwrap();
    let no_roles = {
        let mut u = new_user("nobody@example.com");
        u.roles = Vec::new();
        u
    };
    h.store.insert_user(&no_roles).await.unwrap();

    assert_eq!(
        h.store.user_by_email(&user.email).await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(
        h.store.user_by_id(user.id).await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(
        h.store.user_by_id(no_roles.id).await.unwrap(),
        Some(no_roles)
    );

    let unknown = Email::parse("bob@example.com").unwrap();
    assert_eq!(h.store.user_by_email(&unknown).await.unwrap(), None);
    assert_eq!(h.store.user_by_id(UserId::generate()).await.unwrap(), None);
}

pub(crate) async fn duplicate_email_is_email_taken(h: Harness) {
    let original = stored_user(&h.store, "carol@example.com").await;
    let mut twin = new_user("carol@example.com");
    twin.password_hash = "other".to_owned();
    let err = h.store.insert_user(&twin).await.unwrap_err();
    assert!(matches!(err, StoreError::EmailTaken), "got {err:?}");
    assert_eq!(
        h.store.user_by_email(&original.email).await.unwrap(),
        Some(original)
    );
    assert_eq!(h.store.user_by_id(twin.id).await.unwrap(), None);

    // A duplicate id is not an e-mail problem.
    let mut same_id = new_user("dave@example.com");
    same_id.id = twin.id;
    h.store.insert_user(&same_id).await.unwrap();
    let mut clash = new_user("erin@example.com");
    clash.id = same_id.id;
    let err = h.store.insert_user(&clash).await.unwrap_err();
    assert!(matches!(err, StoreError::Internal(_)), "got {err:?}");
}

pub(crate) async fn list_users_pages_in_byte_order(h: Harness) {
    // Punctuation sorts differently under natural-language collations; both backends
    // must page in byte order.
    for email in ["zed@x.io", "ab@x.io", "a_z@x.io", "a.b@x.io", "a-c@x.io"] {
        stored_user(&h.store, email).await;
    }
    let expected = ["a-c@x.io", "a.b@x.io", "a_z@x.io", "ab@x.io", "zed@x.io"];

    let all = h.store.list_users(None, 100).await.unwrap();
    let emails: Vec<&str> = all.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(emails, expected);

    let mut paged = Vec::new();
    let mut after: Option<Email> = None;
    loop {
        let page = h.store.list_users(after.as_ref(), 2).await.unwrap();
        assert!(page.len() <= 2);
        if page.is_empty() {
            break;
        }
        after = page.last().map(|u| u.email.clone());
        paged.extend(page.into_iter().map(|u| u.email.as_str().to_owned()));
    }
    assert_eq!(paged, expected);
    assert!(h.store.list_users(None, 0).await.unwrap().is_empty());
}

pub(crate) async fn set_user_roles_replaces_roles(h: Harness) {
    let user = stored_user(&h.store, "frank@example.com").await;
    let roles = vec![Role::admin(), Role::parse("billing:write").unwrap()];
    assert!(h.store.set_user_roles(user.id, &roles).await.unwrap());
    let back = h.store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(back.roles, roles);

    assert!(h.store.set_user_roles(user.id, &[]).await.unwrap());
    let back = h.store.user_by_id(user.id).await.unwrap().unwrap();
    assert!(back.roles.is_empty());

    assert!(!h
        .store
        .set_user_roles(UserId::generate(), &roles)
        .await
        .unwrap());
}
