//! History actor: the only writer of the durations/outcomes file.
//!
//! Accepts `Observe` (a test finished: its total duration and outcome) and
//! `Flush` (write the file atomically; sent once, at the end of the run).
//! The scheduler reads durations once, before dispatch, from the store
//! handed over when the run starts.

use actix::prelude::*;

use crate::history::HistoryStore;

pub struct History {
    store: HistoryStore,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Observe {
    pub nodeid: String,
    pub duration: f64,
    pub outcome: String,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Flush;

impl History {
    pub fn new(store: HistoryStore) -> Self {
        History { store }
    }
}

impl Actor for History {
    type Context = Context<Self>;
}

impl Handler<Observe> for History {
    type Result = ();

    fn handle(&mut self, msg: Observe, _: &mut Context<Self>) {
        self.store.record(&msg.nodeid, msg.duration, &msg.outcome);
    }
}

impl Handler<Flush> for History {
    type Result = ();

    fn handle(&mut self, _: Flush, _: &mut Context<Self>) {
        if let Err(e) = self.store.save() {
            eprintln!("rpytest: warning: could not save test history: {e}");
        }
    }
}
