//! Reads waiting on ReadIndex: first for a majority to confirm the round
//! they joined, then for the state machine to apply the index that round
//! read at. Each gets exactly one answer: served, expired, or refused when
//! leadership is lost.

use std::collections::VecDeque;

use super::input::ClientCommand;
use super::Time;
use crate::raft::LogIndex;

pub struct WaitingRead {
    pub round: u64,
    pub command: ClientCommand,
    pub deadline: Time,
}

#[derive(Default)]
pub struct WaitingReads {
    /// Not yet confirmed, in round order.
    unconfirmed: VecDeque<WaitingRead>,
    /// Confirmed; served once `read_index` is applied. In confirmation order,
    /// so read indices never decrease along it.
    confirmed: VecDeque<(LogIndex, WaitingRead)>,
}

impl WaitingReads {
    pub fn add(&mut self, read: WaitingRead) {
        assert!(self.unconfirmed.back().is_none_or(|last| last.round <= read.round), "rounds are registered in order");
        self.unconfirmed.push_back(read);
    }

    /// A majority confirmed `round`: it and every earlier round may be
    /// served at `read_index`.
    pub fn confirm(&mut self, round: u64, read_index: LogIndex) {
        assert!(self.confirmed.back().is_none_or(|(index, _)| *index <= read_index), "read indices never go back");
        while self.unconfirmed.front().is_some_and(|read| read.round <= round) {
            let read = self.unconfirmed.pop_front().expect("just seen");
            self.confirmed.push_back((read_index, read));
        }
    }

    /// Confirmed reads whose index the state machine has applied.
    pub fn take_servable(&mut self, last_applied: LogIndex) -> Vec<ClientCommand> {
        let mut servable = Vec::new();
        while self.confirmed.front().is_some_and(|(index, _)| *index <= last_applied) {
            servable.push(self.confirmed.pop_front().expect("just seen").1.command);
        }
        servable
    }

    pub fn take_expired(&mut self, now: Time) -> Vec<ClientCommand> {
        // Deadlines share one length and reads are added in arrival order,
        // so each queue is also in deadline order.
        let mut expired = Vec::new();
        while self.unconfirmed.front().is_some_and(|read| read.deadline <= now) {
            expired.push(self.unconfirmed.pop_front().expect("just seen").command);
        }
        while self.confirmed.front().is_some_and(|(_, read)| read.deadline <= now) {
            expired.push(self.confirmed.pop_front().expect("just seen").1.command);
        }
        expired
    }

    pub fn take_all(&mut self) -> Vec<ClientCommand> {
        let confirmed = std::mem::take(&mut self.confirmed).into_iter().map(|(_, read)| read.command);
        std::mem::take(&mut self.unconfirmed).into_iter().map(|read| read.command).chain(confirmed).collect()
    }

    pub fn next_deadline(&self) -> Option<Time> {
        let unconfirmed = self.unconfirmed.front().map(|read| read.deadline);
        let confirmed = self.confirmed.front().map(|(_, read)| read.deadline);
        unconfirmed.into_iter().chain(confirmed).min()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.unconfirmed.len() + self.confirmed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Command;
    use std::time::Duration;

    fn read(round: u64, deadline: Time, tag: u8) -> WaitingRead {
        let command = ClientCommand { envelope: vec![vec![tag]], id: None, session: None, command: Command::GetTopics };
        WaitingRead { round, command, deadline }
    }

    #[test]
    fn a_read_is_served_only_once_confirmed_and_applied() {
        let later = Duration::from_secs(60);
        let mut reads = WaitingReads::default();
        reads.add(read(1, later, 1));
        reads.add(read(2, later, 2));
        assert!(reads.take_servable(100).is_empty(), "not confirmed yet");
        reads.confirm(1, 10);
        assert!(reads.take_servable(9).is_empty(), "index 10 not applied yet");
        let served = reads.take_servable(10);
        assert_eq!(served.len(), 1);
        assert_eq!(served[0].envelope, vec![vec![1]]);
        assert_eq!(reads.len(), 1);
        reads.confirm(5, 12);
        assert_eq!(reads.take_servable(12).len(), 1);
        assert_eq!(reads.len(), 0);
    }

    #[test]
    fn expired_and_abandoned_reads_are_all_returned() {
        let now = Duration::from_secs(5);
        let mut reads = WaitingReads::default();
        reads.add(read(1, now, 1));
        reads.add(read(2, now + Duration::from_secs(60), 2));
        assert_eq!(reads.next_deadline(), Some(now));
        assert_eq!(reads.take_expired(now).len(), 1);
        reads.confirm(2, 3);
        assert_eq!(reads.take_all().len(), 1);
        assert_eq!(reads.next_deadline(), None);
    }
}
