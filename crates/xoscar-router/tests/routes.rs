//! The routing order (local, mapped, itself) and changes at run time, seen from many threads.

use std::borrow::Cow;
use std::sync::Arc;

use xoscar_router::{Route, Router};
use xoscar_transport::Address;

fn address(text: &str) -> Address {
    text.parse().expect("a valid address")
}

#[test]
fn unknown_addresses_route_to_themselves() {
    let router: Router<u32> = Router::new();
    for text in ["127.0.0.1:5000", "unix:///tmp/x.sock", "inproc://a", "example.com:1"] {
        assert_eq!(router.resolve(&address(text)), Route::Remote(Cow::Owned(address(text))));
    }
}

#[test]
fn local_wins_over_mapping_and_mapping_over_itself() {
    let router = Router::new();
    let external = address("10.1.2.3:7000");
    let internal = address("unix:///run/pool.sock");
    assert_eq!(router.map(external.clone(), internal.clone()), None);
    assert_eq!(router.resolve(&external), Route::Remote(Cow::Owned(internal.clone())));
    assert_eq!(router.add_local(external.clone(), 7u32), None);
    assert_eq!(router.resolve(&external), Route::Local(7));
    assert_eq!(router.remove_local(&external), Some(7));
    assert_eq!(router.resolve(&external), Route::Remote(Cow::Owned(internal.clone())));
    assert_eq!(router.unmap(&external), Some(internal));
    assert_eq!(router.resolve(&external), Route::Remote(Cow::Owned(external.clone())));
}

#[test]
fn replacing_returns_the_old_entry_and_remove_where_counts() {
    let router = Router::new();
    let a = address("inproc://a");
    let b = address("inproc://b");
    router.add_local(a.clone(), 1u32);
    assert_eq!(router.add_local(a.clone(), 2), Some(1));
    router.add_local(b.clone(), 2);
    router.add_local(address("inproc://c"), 3);
    assert_eq!(router.remove_local_where(|value| *value == 2), 2);
    assert_eq!(router.resolve(&a), Route::Remote(Cow::Owned(a.clone())));
    assert_eq!(router.resolve(&address("inproc://c")), Route::Local(3));
    assert_eq!(
        router.map(b.clone(), address("inproc://x")),
        None,
        "a first mapping replaces nothing"
    );
    assert_eq!(router.map(b.clone(), address("inproc://y")), Some(address("inproc://x")));
}

#[test]
fn changes_are_seen_by_readers_on_other_threads() {
    let router = Arc::new(Router::new());
    let target = address("inproc://moving");
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let router = router.clone();
            let target = target.clone();
            std::thread::spawn(move || {
                // Every answer is one of the states the writer passes through, never a mix.
                let mut saw_local = false;
                for _ in 0..20_000 {
                    match router.resolve(&target) {
                        Route::Local(value) => {
                            assert_eq!(value, 1u32);
                            saw_local = true;
                        }
                        Route::Remote(endpoint) => assert!(
                            *endpoint == target || *endpoint == address("inproc://mapped"),
                            "unexpected endpoint {endpoint}"
                        ),
                    }
                }
                saw_local
            })
        })
        .collect();
    for round in 0..2_000 {
        router.map(target.clone(), address("inproc://mapped"));
        router.add_local(target.clone(), 1);
        if round % 2 == 0 {
            router.unmap(&target);
        }
        router.remove_local(&target);
    }
    router.add_local(target.clone(), 1);
    for reader in readers {
        reader.join().expect("reader thread");
    }
    assert_eq!(router.resolve(&target), Route::Local(1));
}

#[test]
fn every_change_moves_the_version_and_an_unmoved_version_keeps_its_route() {
    let router = Router::new();
    let target = address("10.1.2.3:7000");
    let other = address("10.9.9.9:1");
    let (mut seen, route) = router.resolve_versioned(&target);
    assert_eq!(route, Route::Remote(Cow::Borrowed(&target)));
    assert_eq!(router.version(), seen, "reading changes nothing");
    // Each change, to this address or another: the version moves on and never comes back.
    let changes: [&dyn Fn(); 6] = [
        &|| {
            let _ = router.map(target.clone(), address("unix:///run/pool.sock"));
        },
        &|| {
            let _ = router.add_local(target.clone(), 1u32);
        },
        &|| {
            let _ = router.remove_local(&target);
        },
        &|| {
            let _ = router.unmap(&target);
        },
        &|| {
            let _ = router.add_local(other.clone(), 2);
        },
        &|| {
            let _ = router.remove_local_where(|&value| value == 2);
        },
    ];
    for (step, change) in changes.iter().enumerate() {
        change();
        let (version, route) = router.resolve_versioned(&target);
        assert!(version > seen, "change {step} moved the version ({seen} -> {version})");
        assert_eq!(router.version(), version);
        assert_eq!(route, router.resolve(&target), "the route read with the version");
        seen = version;
    }
}
