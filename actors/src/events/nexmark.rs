//! Nexmark's Person, Auction and Bid events as `spate-loadgen nexmark` writes them, one JSON
//! object per line tagged by its kind (`{"Person":{…}}`, `{"Auction":{…}}`, `{"Bid":{…}}`),
//! with the fields the queries read (others are skipped while decoding); and the `nexmark`
//! crate's generator in process, for `--source gen` (no JSON on the way in).
//!
//! Bids are nine in ten events, so what a bid decodes into is the event's type parameter: a
//! [`Bid`] without the channel and url (most queries), or a [`FullBid`] with them (q16 and
//! q18–q22). Decoding the two strings of every bid costs a quarter of q0's throughput.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use spate::io::source::{EventGenerator, GenOptions};
use spate::time::Millis;

/// One Nexmark event, its bid decoded as `B`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NexmarkEvent<B = Bid> {
    /// A person registering.
    Person(Person),
    /// An auction opening.
    Auction(Auction),
    /// A bid on an auction.
    Bid(B),
}

impl<B: NexmarkBid> NexmarkEvent<B> {
    /// Its event time, epoch milliseconds.
    pub fn date_time(&self) -> Millis {
        match self {
            NexmarkEvent::Person(p) => p.date_time,
            NexmarkEvent::Auction(a) => a.date_time,
            NexmarkEvent::Bid(b) => b.date_time(),
        }
    }

    /// The bid, if it is one.
    pub fn into_bid(self) -> Option<B> {
        match self {
            NexmarkEvent::Bid(b) => Some(b),
            _ => None,
        }
    }
}

/// What the queries read of a bid, whichever fields it decodes.
pub trait NexmarkBid:
    Clone + std::fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The auction.
    fn auction(&self) -> u64;
    /// The person bidding.
    fn bidder(&self) -> u64;
    /// The price, in cents.
    fn price(&self) -> u64;
    /// When it was made, epoch milliseconds.
    fn date_time(&self) -> Millis;
    /// The generator's bid.
    fn generated(bid: nexmark::event::Bid) -> Self;
}

/// A person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its city.
    pub city: String,
    /// Its state (lower case).
    pub state: String,
    /// When it registered, epoch milliseconds.
    pub date_time: Millis,
}

/// An auction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Auction {
    /// Its id.
    pub id: u64,
    /// The item's name.
    #[serde(default)]
    pub item_name: String,
    /// The item's description.
    #[serde(default)]
    pub description: String,
    /// The lowest bid it takes.
    pub initial_bid: u64,
    /// The lowest price it sells at.
    #[serde(default)]
    pub reserve: u64,
    /// When it opened, epoch milliseconds.
    pub date_time: Millis,
    /// When it closes, epoch milliseconds.
    pub expires: Millis,
    /// The person selling.
    pub seller: u64,
    /// Its category.
    pub category: u64,
    /// Padding the generator adds.
    #[serde(default)]
    pub extra: String,
}

/// A bid, without its channel and url.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bid {
    /// The auction.
    pub auction: u64,
    /// The person bidding.
    pub bidder: u64,
    /// The price, in cents.
    pub price: u64,
    /// When it was made, epoch milliseconds.
    pub date_time: Millis,
    /// Padding the generator adds.
    pub extra: String,
}

/// A bid with every field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FullBid {
    /// The auction.
    pub auction: u64,
    /// The person bidding.
    pub bidder: u64,
    /// The price, in cents.
    pub price: u64,
    /// The channel it came through (`Google`, `Facebook`, … or `channel-N`).
    pub channel: String,
    /// The page it was made on.
    pub url: String,
    /// When it was made, epoch milliseconds.
    pub date_time: Millis,
    /// Padding the generator adds.
    pub extra: String,
}

/// Implements [`NexmarkBid`] for a bid struct with the generator's fields it names.
macro_rules! nexmark_bid {
    ($bid:ident { $($field:ident),* }) => {
        impl NexmarkBid for $bid {
            fn auction(&self) -> u64 {
                self.auction
            }
            fn bidder(&self) -> u64 {
                self.bidder
            }
            fn price(&self) -> u64 {
                self.price
            }
            fn date_time(&self) -> Millis {
                self.date_time
            }
            fn generated(b: nexmark::event::Bid) -> Self {
                $bid {
                    auction: b.auction as u64,
                    bidder: b.bidder as u64,
                    price: b.price as u64,
                    date_time: b.date_time as Millis,
                    $($field: b.$field,)*
                }
            }
        }
    };
}

nexmark_bid!(Bid { extra });
nexmark_bid!(FullBid {
    channel,
    url,
    extra
});

/// The `nexmark` crate's events, event `index` on demand, its first at `--start`.
pub struct NexmarkGenerator(nexmark::EventGenerator);

impl NexmarkGenerator {
    /// The generator for `options` (`base_ms`: the first event's time).
    pub fn new(options: &GenOptions) -> Self {
        let config = nexmark::config::NexmarkConfig {
            base_time: options.base_ms.max(0) as u64,
            ..nexmark::config::NexmarkConfig::default()
        };
        NexmarkGenerator(nexmark::EventGenerator::new(config))
    }
}

impl<B: NexmarkBid> EventGenerator<NexmarkEvent<B>> for NexmarkGenerator {
    fn generate(&self, index: u64) -> NexmarkEvent<B> {
        let event =
            (self.0.clone().with_offset(index).next()).expect("the Nexmark generator is unbounded");
        converted(event)
    }

    /// One generator for the whole range: the crate reaches an event by index only through a
    /// generator of its own, which is costly to clone per event.
    fn generate_range(&self, range: std::ops::Range<u64>, out: &mut Vec<NexmarkEvent<B>>) {
        let len = (range.end - range.start) as usize;
        let events = self.0.clone().with_offset(range.start).take(len);
        out.extend(events.map(converted));
    }
}

/// A `nexmark` crate event as spate's.
fn converted<B: NexmarkBid>(event: nexmark::event::Event) -> NexmarkEvent<B> {
    let time = |t: u64| t as Millis;
    match event {
        nexmark::event::Event::Person(p) => NexmarkEvent::Person(Person {
            id: p.id as u64,
            name: p.name,
            city: p.city,
            state: p.state,
            date_time: time(p.date_time),
        }),
        nexmark::event::Event::Auction(a) => NexmarkEvent::Auction(Auction {
            id: a.id as u64,
            item_name: a.item_name,
            description: a.description,
            initial_bid: a.initial_bid as u64,
            reserve: a.reserve as u64,
            date_time: time(a.date_time),
            expires: time(a.expires),
            seller: a.seller as u64,
            category: a.category as u64,
            extra: a.extra,
        }),
        nexmark::event::Event::Bid(b) => NexmarkEvent::Bid(B::generated(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_the_events_of_its_indices() {
        let generator = NexmarkGenerator::new(&GenOptions::default());
        let mut range: Vec<NexmarkEvent<FullBid>> = Vec::new();
        generator.generate_range(97..160, &mut range);
        let one_by_one: Vec<NexmarkEvent<FullBid>> =
            (97..160).map(|i| generator.generate(i)).collect();
        assert_eq!(range.len(), 63);
        assert_eq!(range, one_by_one);
    }
}
