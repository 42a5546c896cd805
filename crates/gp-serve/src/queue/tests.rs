use super::*;

fn reasons(r: &[Reason]) -> BTreeSet<Reason> {
    r.iter().copied().collect()
}

#[test]
fn reasons_merge_per_app_and_developers_go_first() {
    let t = Instant::now();
    let mut q = Queue::new(Retry::default());
    q.push("a", Reason::Stack, None, t);
    q.push("b", Reason::Stack, None, t);
    q.push("c", Reason::Commit, Some("c1"), t);
    q.push("a", Reason::Stack, None, t);
    q.push("b", Reason::Config, None, t);
    let order: Vec<(String, BTreeSet<Reason>)> = std::iter::from_fn(|| q.next(t, |_| false))
        .map(|j| (j.app, j.reasons))
        .collect();
    assert_eq!(
        order,
        [
            ("b".into(), reasons(&[Reason::Config, Reason::Stack])),
            ("c".into(), reasons(&[Reason::Commit])),
            ("a".into(), reasons(&[Reason::Stack])),
        ]
    );
}

#[test]
fn a_busy_app_waits_and_keeps_the_latest_revision() {
    let t = Instant::now();
    let mut q = Queue::new(Retry::default());
    q.push("a", Reason::Commit, Some("r1"), t);
    q.push("a", Reason::Commit, Some("r2"), t);
    assert!(q.next(t, |app| app == "a").is_none());
    let j = q.next(t, |_| false).unwrap();
    assert_eq!(j.revision.as_deref(), Some("r2"));
    assert_eq!(j.attempt, 1);
}

#[test]
fn failures_back_off_then_give_up() {
    let t = Instant::now();
    let retry = Retry {
        retries: 2,
        first: Duration::from_secs(10),
        max: Duration::from_secs(15),
    };
    let mut q = Queue::new(retry);
    q.push("a", Reason::Stack, None, t);
    let j = q.next(t, |_| false).unwrap();
    assert_eq!(q.failed(j, t), AfterFailure::Retry(Duration::from_secs(10)));
    assert!(q.next(t + Duration::from_secs(9), |_| false).is_none());
    let j = q.next(t + Duration::from_secs(10), |_| false).unwrap();
    assert_eq!(j.attempt, 2);
    assert_eq!(
        q.failed(j, t + Duration::from_secs(10)),
        AfterFailure::Retry(Duration::from_secs(15)),
        "doubled, capped"
    );
    let j = q.next(t + Duration::from_secs(25), |_| false).unwrap();
    assert_eq!(j.attempt, 3);
    assert_eq!(q.failed(j, t), AfterFailure::GaveUp);
    assert!(q.is_empty());
}

#[test]
fn a_new_reason_is_never_hidden_by_a_failure() {
    let t = Instant::now();
    let mut q = Queue::new(Retry::default());
    q.push("a", Reason::Commit, Some("bad"), t);
    let j = q.next(t, |_| false).unwrap();
    assert!(matches!(q.failed(j, t), AfterFailure::Retry(_)));
    // Backing off: a new run image arrives and is tried at once, with the commit still pending.
    q.push("a", Reason::Stack, None, t + Duration::from_secs(1));
    let j = q.next(t + Duration::from_secs(1), |_| false).unwrap();
    assert_eq!(j.reasons, reasons(&[Reason::Commit, Reason::Stack]));
    assert_eq!(j.attempt, 1, "a fresh start");
    // While it runs, a commit lands; its failure then requeues at once, merged.
    q.push(
        "a",
        Reason::Commit,
        Some("fixed"),
        t + Duration::from_secs(2),
    );
    assert_eq!(
        q.failed(j, t + Duration::from_secs(3)),
        AfterFailure::Superseded
    );
    let j = q.next(t + Duration::from_secs(3), |_| false).unwrap();
    assert_eq!(j.revision.as_deref(), Some("fixed"));
    assert_eq!(q.depth(Lane::Developer) + q.depth(Lane::Platform), 0);
}
