//! `nexmark-q3`, local item suggestion: `{"name","city","state","id"}` for each auction of
//! category 10 whose seller is a person in state `or`, `id` or `ca` (lower case, as the generator
//! writes them), `id` being the auction's, once per match: an incremental join keyed by person,
//! an auction seen before its seller waiting for the seller (without end, as in Flink's q3).

use super::people;
use crate::events::nexmark::{Person, PersonOrAuction, SlimAuction};
use serde::{Deserialize, Serialize};
use spate::operator::{KeyedContext, KeyedOperator};

/// The states whose sellers are matched.
pub const STATES: [&str; 3] = ["or", "id", "ca"];
/// The category matched.
pub const CATEGORY: u64 = 10;

/// One match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalItem {
    /// The seller's name.
    pub name: String,
    /// The seller's city.
    pub city: String,
    /// The seller's state.
    pub state: String,
    /// The auction.
    pub id: u64,
}

/// A person's match fields, or the auctions waiting for the person.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Seller {
    /// Name, city and state, once the person (in a matched state) registered.
    person: Option<(String, String, String)>,
    /// Whether the person registered (in any state).
    registered: bool,
    /// Auctions of category 10 seen before the person.
    waiting: Vec<u64>,
}

/// Joins each person with their auctions of category 10.
pub struct LocalItems;

type Ctx<'a> = KeyedContext<'a, u64, Seller, LocalItem>;

fn emit(ctx: &mut Ctx<'_>, (name, city, state): &(String, String, String), id: u64) {
    let (name, city, state) = (name.clone(), city.clone(), state.clone());
    ctx.emit(LocalItem {
        name,
        city,
        state,
        id,
    });
}

impl LocalItems {
    fn on_person(person: &Person, ctx: &mut Ctx<'_>) {
        let seller = ctx.state();
        seller.registered = true;
        if !STATES.contains(&person.state.as_str()) {
            seller.waiting.clear();
            return;
        }
        let fields = (
            person.name.clone(),
            person.city.clone(),
            person.state.clone(),
        );
        let waiting = std::mem::take(&mut seller.waiting);
        seller.person = Some(fields.clone());
        for id in waiting {
            emit(ctx, &fields, id);
        }
    }

    fn on_auction(auction: &SlimAuction, ctx: &mut Ctx<'_>) {
        if auction.category != CATEGORY {
            return;
        }
        let seller = ctx.state();
        match (&seller.person, seller.registered) {
            (Some(fields), _) => {
                let fields = fields.clone();
                emit(ctx, &fields, auction.id);
            }
            (None, false) => seller.waiting.push(auction.id),
            (None, true) => {} // a seller elsewhere
        }
    }
}

impl KeyedOperator for LocalItems {
    type Key = u64;
    type Event = PersonOrAuction;
    type State = Seller;
    type Output = LocalItem;

    fn on_event(&self, event: &PersonOrAuction, ctx: &mut Ctx<'_>) {
        match event {
            PersonOrAuction::Person(p) => Self::on_person(p, ctx),
            PersonOrAuction::Auction(a) => Self::on_auction(a, ctx),
        }
    }

    fn describe(&self) -> String {
        "joins each person in or, id or ca with their auctions of category 10".into()
    }
}

/// The pipeline.
pub fn pipeline() -> impl spate::Runnable {
    people(
        "nexmark-q3",
        "Nexmark q3: auctions of category 10 by sellers in or, id or ca, with the seller's name, city and state",
    )
    .process(LocalItems)
}
