//! Typed errors of topology building.
//!
//! Every variant names the offending input so that the operator can put it verbatim into a
//! condition message: bad input must be explained, never half-applied.

use crate::api::TopologyKind;

/// Why a topology cannot be built from a strategy and a member list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// The member list names a member twice.
    #[error("member {name:?} is listed more than once")]
    DuplicateMember {
        /// The repeated member name.
        name: String,
    },
    /// The spec's topology type needs a parameter block that is absent.
    #[error("topology type {kind:?} needs spec.topology.{field}")]
    MissingParameters {
        /// The topology type of the spec.
        kind: TopologyKind,
        /// The missing block, as spelled in the spec.
        field: &'static str,
    },
    /// The spec carries a parameter block that belongs to another topology type.
    #[error("spec.topology.{field} is only allowed with topology type {allowed_with:?}")]
    UnexpectedParameters {
        /// The unexpected block, as spelled in the spec.
        field: &'static str,
        /// The only topology type the block is allowed with.
        allowed_with: TopologyKind,
    },
    /// A hub-and-spoke strategy lists no hub.
    #[error("a hub-and-spoke topology needs at least one hub")]
    NoHubs,
    /// A hub is listed twice.
    #[error("hub {hub:?} is listed more than once")]
    DuplicateHub {
        /// The repeated hub name.
        hub: String,
    },
    /// A hub is not one of the members.
    #[error("hub {hub:?} is not a member of the network")]
    UnknownHub {
        /// The hub name that matches no member.
        hub: String,
    },
    /// `hubsPerSpoke` is 0, which would leave every spoke unconnected.
    #[error("hubsPerSpoke must be at least 1")]
    InvalidHubsPerSpoke,
    /// An end of an explicit link is not one of the members.
    #[error(
        "link {dialer:?} -> {acceptor:?} names {member:?}, which is not a member of the network"
    )]
    UnknownMember {
        /// The end that matches no member.
        member: String,
        /// The dialing end of the link.
        dialer: String,
        /// The accepting end of the link.
        acceptor: String,
    },
    /// An explicit link joins a member to itself.
    #[error("link from {member:?} to itself")]
    SelfLink {
        /// The member at both ends.
        member: String,
    },
    /// Two explicit links join the same pair of members (in either direction).
    #[error("members {a:?} and {b:?} are linked more than once")]
    DuplicateLink {
        /// The lexicographically smaller member of the pair.
        a: String,
        /// The lexicographically greater member of the pair.
        b: String,
    },
    /// A link cost is 0; costs are at least 1 because backends treat 0 as "unset" or invalid.
    #[error("cost of {what} is 0; costs must be at least 1")]
    InvalidCost {
        /// What the cost belongs to, e.g. `spoke links` or `link "a" -> "b"`.
        what: String,
    },
}
