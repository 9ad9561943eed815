//! Failover: the hub that most spokes dial is paused (SIGSTOP of its kube-apiserver); the
//! time until every one of those spokes is `Up` through the other hub, read off the network's
//! status links.

use federation_core::api::{LinkPhase, LinkState};
use federation_tests::operator_env::FedEnv;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Spokes (members that are not hubs) with an `Up` link dialing each hub.
pub fn spokes_by_hub(links: &[LinkState], hubs: &[String]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> =
        hubs.iter().map(|h| (h.clone(), BTreeSet::new())).collect();
    for l in links {
        if l.phase == LinkPhase::Up
            && !hubs.contains(&l.dialer)
            && let Some(spokes) = out.get_mut(&l.acceptor)
        {
            spokes.insert(l.dialer.clone());
        }
    }
    out
}

/// The hub most spokes dial (the first such hub in `hubs` order on a tie) and those spokes.
pub fn busiest_hub(links: &[LinkState], hubs: &[String]) -> Option<(String, BTreeSet<String>)> {
    let by_hub = spokes_by_hub(links, hubs);
    hubs.iter()
        .filter_map(|h| by_hub.get(h).map(|s| (h.clone(), s.clone())))
        .reduce(|best, next| {
            if next.1.len() > best.1.len() {
                next
            } else {
                best
            }
        })
}

/// Whether every spoke has an `Up` link dialing `hub`.
pub fn all_up_through(links: &[LinkState], spokes: &BTreeSet<String>, hub: &str) -> bool {
    spokes.iter().all(|s| {
        links
            .iter()
            .any(|l| &l.dialer == s && l.acceptor == hub && l.phase == LinkPhase::Up)
    })
}

/// What a failover measured.
#[derive(Clone, Debug)]
pub struct Failover {
    /// The paused hub.
    pub paused: String,
    /// The hub the spokes moved to.
    pub survivor: String,
    /// Spokes that dialed the paused hub.
    pub spokes: usize,
    /// Until every one of them was Up through the survivor (`None`: not within the timeout).
    pub took: Option<Duration>,
    /// After resuming the paused hub, until the network was Ready again.
    pub ready_again: Option<Duration>,
}

/// Pauses the busiest hub of the converged network and measures until its spokes are Up
/// through the other hub; then resumes it and waits for Ready again.
pub async fn measure(env: &FedEnv, hubs: &[String], timeout: Duration) -> anyhow::Result<Failover> {
    let net = env.network().await?;
    let links = net.status.map(|s| s.links).unwrap_or_default();
    let (paused, spokes) = busiest_hub(&links, hubs)
        .ok_or_else(|| anyhow::anyhow!("the network has no hub with spokes"))?;
    let survivor = hubs
        .iter()
        .find(|h| **h != paused)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("a failover needs two hubs"))?;
    env.member(&paused)?.pause()?;
    let started = Instant::now();
    let waited = env
        .wait_network("Up through the other hub", timeout, |n| {
            n.status
                .as_ref()
                .is_some_and(|s| all_up_through(&s.links, &spokes, &survivor))
        })
        .await;
    let took = waited.ok().map(|_| started.elapsed());
    env.member(&paused)?.resume()?;
    let resumed = Instant::now();
    let ready_again = env
        .wait_network("Ready", timeout, crate::converge::is_ready)
        .await
        .ok()
        .map(|_| resumed.elapsed());
    Ok(Failover {
        paused,
        survivor,
        spokes: spokes.len(),
        took,
        ready_again,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(dialer: &str, acceptor: &str, phase: LinkPhase) -> LinkState {
        serde_json::from_value(serde_json::json!({
            "dialer": dialer, "acceptor": acceptor, "namespace": "shop", "cost": 1,
            "phase": format!("{phase:?}")
        }))
        .unwrap()
    }

    fn hubs() -> Vec<String> {
        vec!["central".into(), "east".into()]
    }

    #[test]
    fn the_busiest_hub_is_the_one_most_spokes_dial_up() {
        let links = vec![
            link("east", "central", LinkPhase::Up),
            link("west", "central", LinkPhase::Up),
            link("north", "east", LinkPhase::Up),
            link("south", "east", LinkPhase::Up),
            link("alpha", "east", LinkPhase::Pending),
        ];
        // The hub-to-hub link is no spoke, a Pending link is not counted.
        let (hub, spokes) = busiest_hub(&links, &hubs()).unwrap();
        assert_eq!(hub, "east");
        assert_eq!(
            spokes,
            BTreeSet::from(["north".to_owned(), "south".to_owned()])
        );
        // A tie goes to the first hub.
        let mut tie = links.clone();
        tie.push(link("beta", "central", LinkPhase::Up));
        assert_eq!(busiest_hub(&tie, &hubs()).unwrap().0, "central");
        tie.push(link("gamma", "central", LinkPhase::Up));
        let (hub, spokes) = busiest_hub(&tie, &hubs()).unwrap();
        assert_eq!(hub, "central");
        assert_eq!(spokes.len(), 3);
    }

    #[test]
    fn failover_is_done_only_when_every_spoke_is_up_through_the_survivor() {
        let spokes = BTreeSet::from(["west".to_owned(), "north".to_owned()]);
        let mut links = vec![
            link("west", "east", LinkPhase::Up),
            link("north", "east", LinkPhase::Pending),
        ];
        assert!(!all_up_through(&links, &spokes, "east"));
        links[1] = link("north", "east", LinkPhase::Up);
        assert!(all_up_through(&links, &spokes, "east"));
        assert!(!all_up_through(&links, &spokes, "central"));
    }
}
