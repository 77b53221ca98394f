//! Nexmark's Person, Auction and Bid events as `spate-loadgen nexmark` writes them, one JSON
//! object per line tagged by its kind (`{"Person":{…}}`, `{"Auction":{…}}`, `{"Bid":{…}}`),
//! with the fields the queries read (others are skipped while decoding); and the `nexmark`
//! crate's generator in process, for `--source gen` (no JSON on the way in).
//!
//! Bids are nine in ten events, so what a bid decodes into is the event's first type
//! parameter: a [`SlimBid`] of its numbers alone (the queries that read no string of it), a
//! [`Bid`] without the channel and url (q0, q1 and the others that pass `extra` on), a
//! [`FullBid`] with them (q16 and q18–q22), or a [`Skipped`] (q3 and q8, which read persons
//! and auctions alone: a bid is checked to be JSON and nothing of it is decoded). The second
//! parameter does the same for auctions ([`Auction`], [`SlimAuction`], [`Skipped`]) and the
//! third for persons ([`Person`], [`Skipped`]): the queries over bids alone skip both. A query
//! decodes no more than it reads because decoding is most of what the light queries do:
//! skipping the bids of q3 and q8 made them 1.5 and 1.35 times as fast, the strings of a bid
//! cost q2 a quarter of its time, and persons and auctions, one event in ten, took q0 a tenth
//! of its time while serde_json decoded them. A field a query does not read is not checked
//! either: a bid without `extra` is malformed for q0 and fine for q2.
//!
//! A line in its plain, compact form (as the generator writes it) is read by a fast path:
//! [`decode_line`] reads a bid, or a skipped person or auction, with [`skim`], about twice as
//! fast as serde_json, and hands every other line to serde_json, so a query decodes the same
//! events and names the same errors either way (q2 went from 2.56 to 3.64 million events/s
//! from a file).

use crate::events::skim::{self, Cursor};
use nexmark::event::EventType;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use spate::io::source::decode_json_line;
use spate::io::source::{EventGenerator, GenOptions};
use spate::time::Millis;

/// One Nexmark event, its bid decoded as `B`, its auction as `A` and its person as `P`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NexmarkEvent<B = Bid, A = Auction, P = Person> {
    /// A person registering.
    Person(P),
    /// An auction opening.
    Auction(A),
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
}

impl<B, A, P> NexmarkEvent<B, A, P> {
    /// The bid, if it is one.
    pub fn into_bid(self) -> Option<B> {
        match self {
            NexmarkEvent::Bid(b) => Some(b),
            _ => None,
        }
    }
}

/// What a bid decodes into, from a line or from the generator: one of the bid types below, or
/// [`Skipped`] for the queries that drop bids.
pub trait DecodedBid:
    Clone + std::fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The generator's bid.
    fn generated(bid: nexmark::event::Bid) -> Self;

    /// Reads a bid's object on [`decode_line`]'s fast path, from after its opening brace to
    /// its closing one; `None` hands the line to serde_json.
    fn skim(bid: &mut Cursor) -> Option<Self>;
}

/// Decodes a line of Nexmark events: on the fast path of [`skim`] when the line is plain and
/// its kind's type reads it there (every bid type, and [`Skipped`]), every other line by
/// serde_json (which gives the same event, or names what is wrong with the line). Bids are nine
/// events in ten, and the light queries spend most of their time decoding them.
pub fn decode_line<B: DecodedBid, A: DecodedAuction, P: DecodedPerson>(
    line: &[u8],
) -> Result<NexmarkEvent<B, A, P>, String> {
    let skimmed = if line.starts_with(br#"{"Bid":"#) {
        skim_kind(line, br#"{"Bid":{"#, B::skim).map(NexmarkEvent::Bid)
    } else if line.starts_with(br#"{"Auction":"#) {
        skim_kind(line, br#"{"Auction":{"#, A::skim).map(NexmarkEvent::Auction)
    } else {
        skim_kind(line, br#"{"Person":{"#, P::skim).map(NexmarkEvent::Person)
    };
    skimmed.map_or_else(|| decode_json_line(line), Ok)
}

/// A line `HEAD…}}` of one kind, `{"Bid":{…}}` for instance, read by `skim`.
fn skim_kind<T>(line: &[u8], head: &[u8], skim: fn(&mut Cursor) -> Option<T>) -> Option<T> {
    if !(line.starts_with(head) && skim::plain(line)) {
        return None;
    }
    let mut cursor = Cursor::new(&line[head.len()..]);
    let event = skim(&mut cursor)?;
    cursor.eat(b'}')?;
    cursor.at_end().then_some(event)
}

/// A bid line, `{"Bid":{…}}`, read by `B`'s [`skim`](DecodedBid::skim).
#[cfg(test)]
fn skim_bid<B: DecodedBid>(line: &[u8]) -> Option<B> {
    skim_kind(line, br#"{"Bid":{"#, B::skim)
}

/// What the queries read of a bid, whichever fields it decodes.
pub trait NexmarkBid: DecodedBid {
    /// The auction.
    fn auction(&self) -> u64;
    /// The person bidding.
    fn bidder(&self) -> u64;
    /// The price, in cents.
    fn price(&self) -> u64;
    /// When it was made, epoch milliseconds.
    fn date_time(&self) -> Millis;
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

/// A bid's numbers alone: what a query that neither passes bids through nor reads their
/// strings decodes (the strings are skipped, never allocated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlimBid {
    /// The auction.
    pub auction: u64,
    /// The person bidding.
    pub bidder: u64,
    /// The price, in cents.
    pub price: u64,
    /// When it was made, epoch milliseconds.
    pub date_time: Millis,
}

/// What an auction decodes into, from a line or from the generator.
pub trait DecodedAuction:
    Clone + std::fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The generator's auction.
    fn generated(auction: nexmark::event::Auction) -> Self;

    /// Reads an auction's object on [`decode_line`]'s fast path, as
    /// [`DecodedBid::skim`] does; by default none is (serde_json reads it).
    fn skim(_auction: &mut Cursor) -> Option<Self> {
        None
    }

    /// The value of every auction when a query skips them ([`Skipped`]), so the generator
    /// need not make them.
    fn skipped() -> Option<Self> {
        None
    }
}

/// What a person decodes into, from a line or from the generator: [`Person`], or [`Skipped`]
/// for the queries that read bids alone.
pub trait DecodedPerson:
    Clone + std::fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The generator's person.
    fn generated(person: nexmark::event::Person) -> Self;

    /// Reads a person's object on [`decode_line`]'s fast path, as [`DecodedBid::skim`]
    /// does; by default none is (serde_json reads it).
    fn skim(_person: &mut Cursor) -> Option<Self> {
        None
    }

    /// The value of every person when a query skips them ([`Skipped`]), so the generator
    /// need not make them.
    fn skipped() -> Option<Self> {
        None
    }
}

impl DecodedPerson for Person {
    fn generated(p: nexmark::event::Person) -> Self {
        Person {
            id: p.id as u64,
            name: p.name,
            city: p.city,
            state: p.state,
            date_time: p.date_time as Millis,
        }
    }
}

impl DecodedAuction for Auction {
    fn generated(a: nexmark::event::Auction) -> Self {
        Auction {
            id: a.id as u64,
            item_name: a.item_name,
            description: a.description,
            initial_bid: a.initial_bid as u64,
            reserve: a.reserve as u64,
            date_time: a.date_time as Millis,
            expires: a.expires as Millis,
            seller: a.seller as u64,
            category: a.category as u64,
            extra: a.extra,
        }
    }
}

/// An auction without its strings and prices: what the queries joining sellers with their
/// auctions read of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlimAuction {
    /// Its id.
    pub id: u64,
    /// When it opened, epoch milliseconds.
    pub date_time: Millis,
    /// The person selling.
    pub seller: u64,
    /// Its category.
    pub category: u64,
}

impl DecodedAuction for SlimAuction {
    fn generated(a: nexmark::event::Auction) -> Self {
        SlimAuction {
            id: a.id as u64,
            date_time: a.date_time as Millis,
            seller: a.seller as u64,
            category: a.category as u64,
        }
    }
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

/// Implements [`NexmarkBid`] and [`DecodedBid`] for a bid struct with the generator's string
/// fields it names.
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
        }

        impl DecodedBid for $bid {
            fn generated(b: nexmark::event::Bid) -> Self {
                $bid {
                    auction: b.auction as u64,
                    bidder: b.bidder as u64,
                    price: b.price as u64,
                    date_time: b.date_time as Millis,
                    $($field: b.$field,)*
                }
            }

            fn skim(bid: &mut Cursor) -> Option<Self> {
                let ([auction, bidder, price, date_time], [$($field),*]) =
                    skim_bid_fields(bid, [$(stringify!($field)),*])?;
                Some($bid {
                    auction,
                    bidder,
                    price,
                    date_time: Millis::try_from(date_time).ok()?,
                    $($field: std::str::from_utf8($field).ok()?.to_owned(),)*
                })
            }
        }
    };
}

/// The fields of a bid's object on the fast path: its four numbers (auction, bidder, price,
/// date_time) and the strings named, each given exactly once (serde_json refuses a field
/// given twice or missing); other fields are skipped.
fn skim_bid_fields<'a, const S: usize>(
    bid: &mut Cursor<'a>,
    strings: [&str; S],
) -> Option<([u64; 4], [&'a [u8]; S])> {
    const NUMBERS: [&str; 4] = ["auction", "bidder", "price", "date_time"];
    let (mut numbers, mut texts) = ([None; 4], [None; S]);
    bid.fields(|key, value| {
        let named = |names: &[&str]| names.iter().position(|name| name.as_bytes() == key);
        match (named(&NUMBERS), named(&strings)) {
            (Some(i), _) if numbers[i].is_none() => numbers[i] = Some(value.unsigned()?),
            (_, Some(i)) if texts[i].is_none() => texts[i] = Some(value.string()?),
            (Some(_), _) | (_, Some(_)) => return None,
            _ => value.skip_value()?,
        }
        Some(())
    })?;
    Some((all(numbers)?, all(texts)?))
}

/// The values when every one is there.
fn all<T: Copy, const N: usize>(values: [Option<T>; N]) -> Option<[T; N]> {
    values
        .iter()
        .all(Option::is_some)
        .then(|| values.map(|v| v.expect("checked above")))
}

nexmark_bid!(SlimBid {});
nexmark_bid!(Bid { extra });
nexmark_bid!(FullBid {
    channel,
    url,
    extra
});

/// An event of a kind a query does not read (the bids of a query over persons and auctions,
/// the persons and auctions of a query over bids): checked to be JSON and skipped, nothing of
/// it decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Skipped;

impl<'de> Deserialize<'de> for Skipped {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Skipped)
    }
}

impl DecodedBid for Skipped {
    fn generated(_: nexmark::event::Bid) -> Self {
        Skipped
    }

    fn skim(bid: &mut Cursor) -> Option<Self> {
        Skipped::skim_any(bid)
    }
}

impl DecodedAuction for Skipped {
    fn generated(_: nexmark::event::Auction) -> Self {
        Skipped
    }

    fn skim(auction: &mut Cursor) -> Option<Self> {
        Skipped::skim_any(auction)
    }

    fn skipped() -> Option<Self> {
        Some(Skipped)
    }
}

impl DecodedPerson for Skipped {
    fn generated(_: nexmark::event::Person) -> Self {
        Skipped
    }

    fn skim(person: &mut Cursor) -> Option<Self> {
        Skipped::skim_any(person)
    }

    fn skipped() -> Option<Self> {
        Some(Skipped)
    }
}

impl Skipped {
    /// Skips an object's fields of strings and unsigned integers on the fast path (others
    /// are left to serde_json).
    fn skim_any(object: &mut Cursor) -> Option<Self> {
        object.fields(|_, value| value.skip_value())?;
        Some(Skipped)
    }
}

/// A person or an auction: the events of the queries that join sellers with their auctions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PersonOrAuction {
    /// A person registering.
    Person(Person),
    /// An auction opening.
    Auction(SlimAuction),
}

impl PersonOrAuction {
    /// The person or auction of `event`; `None` for a bid.
    pub fn of<B>(event: NexmarkEvent<B, SlimAuction>) -> Option<Self> {
        match event {
            NexmarkEvent::Person(p) => Some(PersonOrAuction::Person(p)),
            NexmarkEvent::Auction(a) => Some(PersonOrAuction::Auction(a)),
            NexmarkEvent::Bid(_) => None,
        }
    }

    /// Its event time, epoch milliseconds.
    pub fn date_time(&self) -> Millis {
        match self {
            PersonOrAuction::Person(p) => p.date_time,
            PersonOrAuction::Auction(a) => a.date_time,
        }
    }

    /// The person: the registering one, or the auction's seller.
    pub fn person(&self) -> u64 {
        match self {
            PersonOrAuction::Person(p) => p.id,
            PersonOrAuction::Auction(a) => a.seller,
        }
    }
}

/// The `nexmark` crate's events, event `index` on demand, its first at `--start`.
pub struct NexmarkGenerator {
    events: nexmark::EventGenerator,
    /// Of each `proportion_denominator` events, by number: first this many persons, then
    /// auctions, then bids.
    persons: u64,
    auctions: u64,
    bids: u64,
}

impl NexmarkGenerator {
    /// The generator for `options` (`base_ms`: the first event's time).
    pub fn new(options: &GenOptions) -> Self {
        let config = nexmark::config::NexmarkConfig {
            base_time: options.base_ms.max(0) as u64,
            ..nexmark::config::NexmarkConfig::default()
        };
        // Event `index` is event number `index`, which `bids_alone` relies on.
        assert!(config.out_of_order_group_size == 1 && config.first_event_number == 0);
        NexmarkGenerator {
            persons: config.person_proportion as u64,
            auctions: config.auction_proportion as u64,
            bids: config.bid_proportion as u64,
            events: nexmark::EventGenerator::new(config),
        }
    }

    /// The kind of event `index`.
    fn kind(&self, index: u64) -> EventType {
        match index % (self.persons + self.auctions + self.bids) {
            n if n < self.persons => EventType::Person,
            n if n < self.persons + self.auctions => EventType::Auction,
            _ => EventType::Bid,
        }
    }

    /// How many of the events before `index` are bids.
    fn bids_before(&self, index: u64) -> u64 {
        let cycle = self.persons + self.auctions + self.bids;
        let (whole, rest) = (index / cycle, index % cycle);
        whole * self.bids + rest.saturating_sub(self.persons + self.auctions)
    }

    /// Events `range` of a query that skips persons and auctions: its bids made by the crate's
    /// generator of bids alone (the same bids: each event is made from its number), the others
    /// skipped without making them. An auction's strings cost as much to make as six bids'.
    fn bids_alone<B: DecodedBid, A: DecodedAuction, P: DecodedPerson>(
        &self,
        range: std::ops::Range<u64>,
        (auction, person): (A, P),
        out: &mut Vec<NexmarkEvent<B, A, P>>,
    ) {
        let mut bids = (self.events.clone())
            .with_type_filter(EventType::Bid)
            .with_offset(self.bids_before(range.start));
        out.extend(range.map(|index| match self.kind(index) {
            EventType::Person => NexmarkEvent::Person(person.clone()),
            EventType::Auction => NexmarkEvent::Auction(auction.clone()),
            EventType::Bid => match bids.next() {
                Some(nexmark::event::Event::Bid(bid)) => NexmarkEvent::Bid(B::generated(bid)),
                other => unreachable!("the generator of bids made {other:?}"),
            },
        }));
    }
}

impl<B: DecodedBid, A: DecodedAuction, P: DecodedPerson> EventGenerator<NexmarkEvent<B, A, P>>
    for NexmarkGenerator
{
    fn generate(&self, index: u64) -> NexmarkEvent<B, A, P> {
        let event = (self.events.clone().with_offset(index).next())
            .expect("the Nexmark generator is unbounded");
        converted(event)
    }

    /// One generator for the whole range: the crate reaches an event by index only through a
    /// generator of its own, which is costly to clone per event. A query that skips persons
    /// and auctions gets its bids alone made (`bids_alone`).
    fn generate_range(&self, range: std::ops::Range<u64>, out: &mut Vec<NexmarkEvent<B, A, P>>) {
        if let (Some(auction), Some(person)) = (A::skipped(), P::skipped()) {
            return self.bids_alone(range, (auction, person), out);
        }
        let len = (range.end - range.start) as usize;
        let events = self.events.clone().with_offset(range.start).take(len);
        out.extend(events.map(converted));
    }
}

/// A `nexmark` crate event as spate's.
fn converted<B: DecodedBid, A: DecodedAuction, P: DecodedPerson>(
    event: nexmark::event::Event,
) -> NexmarkEvent<B, A, P> {
    match event {
        nexmark::event::Event::Person(p) => NexmarkEvent::Person(P::generated(p)),
        nexmark::event::Event::Auction(a) => NexmarkEvent::Auction(A::generated(a)),
        nexmark::event::Event::Bid(b) => NexmarkEvent::Bid(B::generated(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_over_bids_alone_is_made_the_same_bids() {
        let generator = NexmarkGenerator::new(&GenOptions::default());
        for range in [0..1, 3..5, 97..1_160, 4_999..5_050] {
            let mut alone: Vec<NexmarkEvent<Bid, Skipped, Skipped>> = Vec::new();
            generator.generate_range(range.clone(), &mut alone);
            let every = range.clone().map(|i| generator.generate(i));
            let skipped: Vec<NexmarkEvent<Bid, Skipped, Skipped>> = every
                .map(|e: NexmarkEvent<Bid>| match e {
                    NexmarkEvent::Bid(b) => NexmarkEvent::Bid(b),
                    NexmarkEvent::Auction(_) => NexmarkEvent::Auction(Skipped),
                    NexmarkEvent::Person(_) => NexmarkEvent::Person(Skipped),
                })
                .collect();
            assert_eq!(alone, skipped, "{range:?}");
        }
    }

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

    #[test]
    fn the_slim_types_decode_what_the_full_ones_do_of_the_same_events() {
        let generator = NexmarkGenerator::new(&GenOptions::default());
        let mut full: Vec<NexmarkEvent<FullBid>> = Vec::new();
        generator.generate_range(0..500, &mut full);
        for event in &full {
            let line = serde_json::to_string(event).unwrap();
            let slim: NexmarkEvent<SlimBid, SlimAuction> = serde_json::from_str(&line).unwrap();
            let skipped: NexmarkEvent<Skipped, SlimAuction> = serde_json::from_str(&line).unwrap();
            match (event, &slim) {
                (NexmarkEvent::Bid(b), NexmarkEvent::Bid(s)) => {
                    let numbers = (b.auction, b.bidder, b.price, b.date_time);
                    assert_eq!(numbers, (s.auction, s.bidder, s.price, s.date_time));
                    assert_eq!(PersonOrAuction::of(skipped), None);
                }
                (NexmarkEvent::Auction(a), NexmarkEvent::Auction(s)) => {
                    let numbers = (a.id, a.date_time, a.seller, a.category);
                    assert_eq!(numbers, (s.id, s.date_time, s.seller, s.category));
                    let of = PersonOrAuction::of(skipped).unwrap();
                    assert_eq!((of.person(), of.date_time()), (a.seller, a.date_time));
                }
                (NexmarkEvent::Person(p), NexmarkEvent::Person(s)) => {
                    assert_eq!(p, s);
                    let of = PersonOrAuction::of(skipped).unwrap();
                    assert_eq!((of.person(), of.date_time()), (p.id, p.date_time));
                }
                other => panic!("decoded as another kind: {other:?}"),
            }
        }
    }

    /// Lines of 2,000 generated events, as `spate-loadgen nexmark` writes them.
    fn generated_lines() -> Vec<String> {
        let generator = NexmarkGenerator::new(&GenOptions::default());
        let mut events: Vec<NexmarkEvent<FullBid>> = Vec::new();
        generator.generate_range(0..2_000, &mut events);
        (events.iter())
            .map(|e| serde_json::to_string(e).unwrap())
            .collect()
    }

    /// Checks that `decode_line` and serde_json make the same of `line`, for every bid type.
    fn same_either_way(line: &[u8]) {
        fn both<B: DecodedBid + PartialEq>(line: &[u8]) {
            let fast: Result<NexmarkEvent<B>, String> = decode_line(line);
            let slow = decode_json_line(line);
            assert_eq!(fast, slow, "{}", String::from_utf8_lossy(line));
        }
        both::<SlimBid>(line);
        both::<Skipped>(line);
        both::<Bid>(line);
        both::<FullBid>(line);
        let fast: Result<NexmarkEvent<SlimBid, Skipped, Skipped>, String> = decode_line(line);
        let slow = decode_json_line(line);
        assert_eq!(fast, slow, "{}", String::from_utf8_lossy(line));
    }

    #[test]
    fn the_fast_path_reads_every_generated_event_as_serde_json_does() {
        let (mut bids, mut others) = (0, 0);
        for line in generated_lines() {
            let line = line.as_bytes();
            same_either_way(line);
            if line.starts_with(br#"{"Bid""#) {
                // Taken by the fast path, not handed to serde_json.
                assert!(skim_bid::<SlimBid>(line).is_some() && skim_bid::<Skipped>(line).is_some());
                assert!(skim_bid::<Bid>(line).is_some() && skim_bid::<FullBid>(line).is_some());
                bids += 1;
            } else {
                let skipped = skim_kind(line, br#"{"Person":{"#, <Skipped as DecodedPerson>::skim)
                    .or_else(|| {
                        skim_kind(line, br#"{"Auction":{"#, <Skipped as DecodedAuction>::skim)
                    });
                assert_eq!(skipped, Some(Skipped), "{}", String::from_utf8_lossy(line));
                others += 1;
            }
        }
        assert!(bids > 1_500 && others > 100, "{bids} bids, {others} others");
    }

    #[test]
    fn lines_the_fast_path_cannot_read_alone_decode_as_serde_json_decodes_them() {
        let bid = r#"{"Bid":{"auction":1000,"bidder":1001,"price":7,"channel":"Apple","url":"https://x.y/z?a=1","date_time":1767225600004,"extra":"pad"}}"#;
        let mut lines: Vec<String> = [
            r#"{"Bid":{"price":7,"date_time":4,"bidder":2,"auction":1}}"#,
            r#"{"Bid":{"auction":1,"bidder":2,"price":3,"date_time":4,"auction":5}}"#,
            r#"{"Bid":{"auction":1,"bidder":2,"price":3}}"#,
            r#"{"Bid":{"auction":1,"bidder":2,"price":3,"date_time":9223372036854775808}}"#,
            r#"{"Bid":{"auction":1,"bidder":2,"price":3,"date_time":4,"x":[1,{"y":null}]}}"#,
            r#"{"Bid":{"auction":1,"bidder":2,"price":3,"date_time":4,"x":"a"b"}}"#,
            r#"{"Bid":{"auction":1,"bidder":2,"price":3,"date_time":4},"Person":{}}"#,
            r#"{"Bid":{"auction":1,"bidder":2,"price":3,"date_time":4}} "#,
            r#"{"Bid": {"auction":1,"bidder":2,"price":3,"date_time":4}}"#,
            r#"{"Bid":{"auction":1,"bidder":2,"price":3.0,"date_time":4}}"#,
            r#"{"Bid":{"auction":1,"bidder":2,"price":-3,"date_time":4}}"#,
            r#"{"Bid":{"auction":01,"bidder":2,"price":3,"date_time":4}}"#,
            r#"{"Bid":{"auction":1,"bidder":2,"price":3,"date_time":4,"extra":"é"}}"#,
            r#"{"Bid":{"auction":1,"bidder":2,"price":3,"date_time":4,"extra":7}}"#,
            r#"{"Bid":{"auction":1,"bidder":2,"price":3,"date_time":4,"extra":"a","extra":"b"}}"#,
            r#"{"Bid":{"auction":1,"bidder":2,"price":3,"date_time":4,"channel":"c","url":"u"}}"#,
            r#"{"Bid":{"auction":"1","bidder":2,"price":3,"date_time":4,"extra":""}}"#,
            r#"{"Bid":{}}"#,
            r#"{"Bid":{"auction":1,}}"#,
        ]
        .map(String::from)
        .to_vec();
        // And bids with a byte changed, dropped or added, as a damaged file holds them.
        let symbols = b"0123456789-.eE \\\"{}[],:ant\t";
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below as u64) as usize
        };
        let person = r#"{"Person":{"id":1000,"name":"Ann Lee","city":"Bend","state":"or","date_time":1767225600004}}"#;
        let auction = r#"{"Auction":{"id":1,"item_name":"x","initial_bid":5,"date_time":4,"expires":9,"seller":3,"category":10}}"#;
        for i in 0..30_000 {
            let mut line = [bid, bid, person, auction][i % 4].as_bytes().to_vec();
            let (at, symbol) = (next(line.len()), symbols[next(symbols.len())]);
            match next(3) {
                0 => line[at] = symbol,
                1 => drop(line.remove(at)),
                _ => line.insert(at, symbol),
            }
            lines.push(String::from_utf8(line).unwrap());
        }
        for line in &lines {
            same_either_way(line.as_bytes());
        }
    }

    #[test]
    fn a_missing_field_fails_only_the_types_that_decode_it() {
        let line = r#"{"Bid":{"auction":1,"bidder":2,"price":3,"date_time":4}}"#;
        assert!(serde_json::from_str::<NexmarkEvent<SlimBid>>(line).is_ok());
        let error = serde_json::from_str::<NexmarkEvent<Bid>>(line).unwrap_err();
        assert!(
            error.to_string().contains("missing field `extra`"),
            "{error}"
        );
    }

    #[test]
    fn a_skipped_event_must_still_be_json() {
        type AllSkipped = NexmarkEvent<Skipped, Skipped, Skipped>;
        let decode = |line: &str| decode_line::<Skipped, Skipped, Skipped>(line.as_bytes());
        for kind in ["Bid", "Auction", "Person"] {
            let line = format!(r#"{{"{kind}":{{"id":1,"anything":[1,{{"x":"y"}}]}}}}"#);
            assert!(decode(&line).is_ok(), "{line}");
            for broken in [
                r#"{"id":1,}}"#,
                r#"{"id":1"#,
                r#"{"id":1}"#,
                r#"{"id":1}} x"#,
            ] {
                let line = format!(r#"{{"{kind}":{broken}"#);
                assert!(decode(&line).is_err(), "{line}");
            }
        }
        assert!(decode(r#"{"Bids":{}}"#).is_err(), "an unknown kind");
        let skipped: AllSkipped = NexmarkEvent::Person(Skipped);
        assert_eq!(decode(r#"{"Person":{}}"#), Ok(skipped));
    }
}
