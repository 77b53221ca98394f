//! `nexmark-q8`, new users: `{"id","name","window_start"}` for each person who created an
//! auction as its seller in the same 10-second tumbling window in which the person registered,
//! once per window (emitted as soon as both are seen; keyed by person).

use super::people;
use crate::events::nexmark::PersonOrAuction;
use serde::{Deserialize, Serialize};
use spate::operator::{KeyedContext, KeyedOperator};
use spate::time::{Millis, StateTtl};

/// The window size.
pub const WINDOW: Millis = 10_000;

/// One new seller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewSeller {
    /// The person.
    pub id: u64,
    /// Their name.
    pub name: String,
    /// The window's start, epoch milliseconds.
    pub window_start: Millis,
}

/// A person's registration window, and the windows of their auctions seen before it.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Registration {
    /// The window and name of the registration, and whether it was emitted.
    person: Option<(Millis, String, bool)>,
    /// Windows of the person's auctions seen before the registration.
    auctions: Vec<Millis>,
}

/// Matches each person's registration window with their auctions' windows.
pub struct NewSellers;

type Ctx<'a> = KeyedContext<'a, u64, Registration, NewSeller>;

fn window(time: Millis) -> Millis {
    time.div_euclid(WINDOW) * WINDOW
}

impl KeyedOperator for NewSellers {
    type Key = u64;
    type Event = PersonOrAuction;
    type State = Registration;
    type Output = NewSeller;

    fn on_event(&self, event: &PersonOrAuction, ctx: &mut Ctx<'_>) {
        let id = *ctx.key();
        let state = ctx.state();
        let seen = match event {
            PersonOrAuction::Person(p) => {
                let w = window(p.date_time);
                let seen = state.auctions.contains(&w);
                state.auctions.clear();
                state.person = Some((w, p.name.clone(), seen));
                seen.then(|| (w, p.name.clone()))
            }
            PersonOrAuction::Auction(a) => match &mut state.person {
                Some((w, name, emitted)) if *w == window(a.date_time) && !*emitted => {
                    *emitted = true;
                    Some((*w, name.clone()))
                }
                Some(_) => None,
                None => {
                    state.auctions.push(window(a.date_time));
                    None
                }
            },
        };
        if let Some((window_start, name)) = seen {
            ctx.emit(NewSeller {
                id,
                name,
                window_start,
            });
        }
    }

    fn describe(&self) -> String {
        "matches each person's registration window with their auctions' windows".into()
    }
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    people(
        "nexmark-q8",
        "Nexmark q8: persons who opened an auction in the 10-second window in which they registered",
    )
    // A registration matters for its own window only.
    .state_ttl(StateTtl::event_time(std::time::Duration::from_secs(60)))
    .process(NewSellers)
}
