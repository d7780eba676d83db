//! Which participant of a room a connection belongs to.
//!
//! A room has exactly two participants, and everything the relay does for one of them it does
//! towards the other: its media goes to the other side, a keyframe request goes to the other
//! side's sender. This names the two and that relation, instead of the numbers 0 and 1 and
//! `1 - side`.

/// The citizen or the operator of a 1:1 room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Citizen,
    Operator,
}

impl Side {
    /// The participant at the other end of the call.
    pub fn other(self) -> Side {
        match self {
            Side::Citizen => Side::Operator,
            Side::Operator => Side::Citizen,
        }
    }

    /// Its name in the relay's log lines and `/metrics` labels.
    pub fn label(self) -> &'static str {
        match self {
            Side::Citizen => "citizen",
            Side::Operator => "operator",
        }
    }

    /// The side's place in per-side arrays (the room's connections, the statistics' `lost`
    /// and `rtt_us`): 0 for the citizen, 1 for the operator.
    pub fn index(self) -> usize {
        match self {
            Side::Citizen => 0,
            Side::Operator => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_side_faces_the_other() {
        assert_eq!(Side::Citizen.other(), Side::Operator);
        assert_eq!(Side::Operator.other(), Side::Citizen);
        assert_eq!(Side::Citizen.other().other(), Side::Citizen);
    }

    #[test]
    fn the_citizen_comes_first() {
        assert_eq!(Side::Citizen.index(), 0);
        assert_eq!(Side::Operator.index(), 1);
    }
}
