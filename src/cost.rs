//! What archiving costs: storage per month, the charge for deleting an archive
//! before its minimum storage period ends, and the price of a retrieval before it
//! is requested. Figures are estimates from configurable list prices.
//!
//! The defaults are Amazon Glacier (vault API) list prices for us-east-1 as of
//! 2024 (check <https://aws.amazon.com/glacier/pricing/>; override them in the
//! config's `[prices]` table):
//!
//! | item | price |
//! | --- | --- |
//! | storage | 0.0036 USD per GB-month |
//! | minimum storage period | 90 days (deleting earlier is billed for the rest) |
//! | Expedited retrieval | 0.03 USD per GB + 10.00 USD per 1,000 requests |
//! | Standard retrieval | 0.01 USD per GB + 0.05 USD per 1,000 requests |
//! | Bulk retrieval | 0.0025 USD per GB + 0.025 USD per 1,000 requests |
//! | upload requests | 0.05 USD per 1,000 (UploadArchive; a multipart upload's initiate, each part, complete) |
//!
//! A "GB" is 2^30 bytes, as AWS bills it. A month is 30 days (AWS pro-rates the
//! early-deletion charge over the remaining days of the 90-day minimum, which is
//! 3 months of storage). Glacier vaults' per-archive overhead (32 KiB at the
//! Glacier rate plus 8 KiB at the S3 Standard rate) is not included in the vault
//! defaults.
//!
//! S3 sets default to the list prices of their storage class (us-east-1, 2024),
//! per-object overhead and minimum billable size included, since many small files
//! are where they matter:
//!
//! | class | storage per GB-month | minimum days | Expedited / Standard / Bulk retrieval per GB + per 1,000 | per object | PUT, COPY, POST per 1,000 |
//! | --- | --- | --- | --- | --- | --- |
//! | DEEP_ARCHIVE | 0.00099 | 180 | – / 0.02 + 0.10 / 0.0025 + 0.025 | 32 KiB at the class rate + 8 KiB at 0.023 | 0.05 |
//! | GLACIER | 0.0036 | 90 | 0.03 + 10.00 / 0.01 + 0.05 / 0 + 0 | 32 KiB at the class rate + 8 KiB at 0.023 | 0.03 |
//! | GLACIER_IR | 0.004 | 90 | 0.03 + 0.01 (read at once) | billed as at least 128 KiB | 0.02 |
//! | STANDARD | 0.023 | 0 | 0 + 0.0004 (read at once) | – | 0.005 |
//!
//! Upload requests are counted where they are sent (`store::requests`): a
//! PutObject is one, a multipart upload its CreateMultipartUpload, one
//! UploadPart per part, its CompleteMultipartUpload and the PutObjectTagging
//! that records its hashes; a run's count and charge go into its summary in
//! the run history (`history`), and `firn cost` shows the last backup's.

use serde::{Deserialize, Serialize};

use crate::catalog::{ArchiveRecord, ArchiveState};
use crate::model::Tier;
use crate::store::s3::StorageClass;

/// Which list prices a store's archives are charged at when the config names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceProfile {
    /// The embedded store: no charges.
    Free,
    GlacierVault,
    S3(StorageClass),
}

/// Bytes in the "GB" of a price (AWS bills 2^30 bytes as one GB).
pub const BYTES_PER_GB: f64 = (1u64 << 30) as f64;
/// Days in the "month" of a storage price.
pub const DAYS_PER_MONTH: f64 = 30.0;
const SECS_PER_DAY: i64 = 86_400;

/// Retrieval prices of one tier.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TierPrices {
    pub retrieval_per_gb: f64,
    pub retrieval_per_1000_requests: f64,
}

/// The prices estimates are made with. Deserializes from a `[prices]` table where
/// every field is optional (missing ones take the Glacier defaults) and unknown
/// keys are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PriceSettings")]
pub struct Prices {
    pub currency: String,
    pub storage_per_gb_month: f64,
    /// Deleting an archive younger than this is billed for the remaining days.
    pub minimum_storage_days: u32,
    pub expedited: TierPrices,
    pub standard: TierPrices,
    pub bulk: TierPrices,
    /// Bytes each archive is billed for on top of its size at the storage rate
    /// (S3 GLACIER / DEEP_ARCHIVE: 32 KiB of index).
    #[serde(default)]
    pub overhead_bytes: u64,
    /// Bytes each archive is billed for at `overhead_storage_per_gb_month` (S3
    /// GLACIER / DEEP_ARCHIVE: 8 KiB of name and metadata at the STANDARD rate).
    #[serde(default)]
    pub overhead_standard_bytes: u64,
    #[serde(default)]
    pub overhead_storage_per_gb_month: f64,
    /// An archive is billed as at least this large (GLACIER_IR: 128 KiB).
    #[serde(default)]
    pub minimum_billable_bytes: u64,
    /// Each request that uploads (S3's PUT, COPY and POST class: PutObject,
    /// each request of a multipart upload; a vault's upload requests), per
    /// 1,000 (see `store::requests`).
    #[serde(default)]
    pub upload_per_1000_requests: f64,
}

impl Default for Prices {
    /// Amazon Glacier (vault API), us-east-1 list prices as of 2024.
    fn default() -> Self {
        Prices {
            currency: "USD".into(),
            storage_per_gb_month: 0.0036,
            minimum_storage_days: 90,
            expedited: TierPrices {
                retrieval_per_gb: 0.03,
                retrieval_per_1000_requests: 10.0,
            },
            standard: TierPrices {
                retrieval_per_gb: 0.01,
                retrieval_per_1000_requests: 0.05,
            },
            bulk: TierPrices {
                retrieval_per_gb: 0.0025,
                retrieval_per_1000_requests: 0.025,
            },
            overhead_bytes: 0,
            overhead_standard_bytes: 0,
            overhead_storage_per_gb_month: 0.0,
            minimum_billable_bytes: 0,
            upload_per_1000_requests: 0.05,
        }
    }
}

const KIB: u64 = 1024;

impl Prices {
    /// The defaults of a store with no `[prices]` table (see the module docs).
    pub fn defaults_for(profile: PriceProfile) -> Prices {
        let tier = |per_gb, per_1000| TierPrices {
            retrieval_per_gb: per_gb,
            retrieval_per_1000_requests: per_1000,
        };
        match profile {
            PriceProfile::Free => Prices::free(),
            PriceProfile::GlacierVault => Prices::default(),
            PriceProfile::S3(class) => {
                let base = Prices {
                    overhead_bytes: 32 * KIB,
                    overhead_standard_bytes: 8 * KIB,
                    overhead_storage_per_gb_month: 0.023,
                    ..Prices::default()
                };
                match class {
                    StorageClass::DeepArchive => Prices {
                        storage_per_gb_month: 0.00099,
                        minimum_storage_days: 180,
                        // Deep Archive has no Expedited: priced like Standard.
                        expedited: tier(0.02, 0.10),
                        standard: tier(0.02, 0.10),
                        bulk: tier(0.0025, 0.025),
                        upload_per_1000_requests: 0.05,
                        ..base
                    },
                    StorageClass::Glacier => Prices {
                        bulk: tier(0.0, 0.0),
                        upload_per_1000_requests: 0.03,
                        ..base
                    },
                    StorageClass::GlacierIr => Prices {
                        storage_per_gb_month: 0.004,
                        minimum_storage_days: 90,
                        expedited: tier(0.03, 0.01),
                        standard: tier(0.03, 0.01),
                        bulk: tier(0.03, 0.01),
                        overhead_bytes: 0,
                        overhead_standard_bytes: 0,
                        minimum_billable_bytes: 128 * KIB,
                        upload_per_1000_requests: 0.02,
                        ..base
                    },
                    StorageClass::Standard => Prices {
                        storage_per_gb_month: 0.023,
                        minimum_storage_days: 0,
                        expedited: tier(0.0, 0.0004),
                        standard: tier(0.0, 0.0004),
                        bulk: tier(0.0, 0.0004),
                        overhead_bytes: 0,
                        overhead_standard_bytes: 0,
                        upload_per_1000_requests: 0.005,
                        ..base
                    },
                }
            }
        }
    }

    /// What fills the gaps of a `[prices]` table: the store's own list prices,
    /// and Glacier's for the embedded store (a table there estimates another
    /// store's costs).
    pub fn gaps_for(profile: PriceProfile) -> Prices {
        match profile {
            PriceProfile::Free => Prices::default(),
            other => Prices::defaults_for(other),
        }
    }

    /// The bytes an archive of `size` is billed for at the storage rate.
    pub fn billed_bytes(&self, size: u64) -> u64 {
        size.max(self.minimum_billable_bytes) + self.overhead_bytes
    }

    /// What keeping one more archive of `size` bytes adds to a month of storage:
    /// its billed bytes at the storage rate and its per-archive overhead (what
    /// [`CostSummary::of`] sums over every archive).
    pub fn monthly_of_archive(&self, size: u64) -> f64 {
        self.monthly_storage(self.billed_bytes(size))
            + gb(self.overhead_standard_bytes) * self.overhead_storage_per_gb_month
    }

    /// What the per-archive overhead (and minimum billable size) adds to a month
    /// of storing `archives` archives holding `bytes` bytes, given their billed
    /// bytes at the storage rate.
    pub fn monthly_overhead(&self, archives: u64, bytes: u64, billed: u64) -> f64 {
        gb(billed.saturating_sub(bytes)) * self.storage_per_gb_month
            + gb(archives * self.overhead_standard_bytes) * self.overhead_storage_per_gb_month
    }
}

/// One tier's prices as written in the config (every field optional).
#[derive(Debug, Default, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierPriceSettings {
    pub retrieval_per_gb: Option<f64>,
    pub retrieval_per_1000_requests: Option<f64>,
}

/// A `[prices]` table as written in the config: what is missing comes from the
/// layer below (`[sets.NAME.prices]` over `[prices]` over the defaults).
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSettings {
    pub currency: Option<String>,
    pub storage_per_gb_month: Option<f64>,
    pub minimum_storage_days: Option<u32>,
    pub expedited: Option<TierPriceSettings>,
    pub standard: Option<TierPriceSettings>,
    pub bulk: Option<TierPriceSettings>,
    pub overhead_bytes: Option<u64>,
    pub overhead_standard_bytes: Option<u64>,
    pub overhead_storage_per_gb_month: Option<f64>,
    pub minimum_billable_bytes: Option<u64>,
    pub upload_per_1000_requests: Option<f64>,
}

impl TierPriceSettings {
    fn over(self, below: Option<TierPriceSettings>) -> TierPriceSettings {
        let below = below.unwrap_or_default();
        TierPriceSettings {
            retrieval_per_gb: self.retrieval_per_gb.or(below.retrieval_per_gb),
            retrieval_per_1000_requests: self
                .retrieval_per_1000_requests
                .or(below.retrieval_per_1000_requests),
        }
    }

    fn apply(self, base: TierPrices) -> TierPrices {
        TierPrices {
            retrieval_per_gb: self.retrieval_per_gb.unwrap_or(base.retrieval_per_gb),
            retrieval_per_1000_requests: self
                .retrieval_per_1000_requests
                .unwrap_or(base.retrieval_per_1000_requests),
        }
    }
}

impl PriceSettings {
    /// These settings, with what they leave out taken from `below`.
    pub fn over(self, below: &PriceSettings) -> PriceSettings {
        let tier = |mine: Option<TierPriceSettings>, theirs: Option<TierPriceSettings>| match mine {
            Some(mine) => Some(mine.over(theirs)),
            None => theirs,
        };
        PriceSettings {
            currency: self.currency.or_else(|| below.currency.clone()),
            storage_per_gb_month: self.storage_per_gb_month.or(below.storage_per_gb_month),
            minimum_storage_days: self.minimum_storage_days.or(below.minimum_storage_days),
            expedited: tier(self.expedited, below.expedited),
            standard: tier(self.standard, below.standard),
            bulk: tier(self.bulk, below.bulk),
            overhead_bytes: self.overhead_bytes.or(below.overhead_bytes),
            overhead_standard_bytes: self
                .overhead_standard_bytes
                .or(below.overhead_standard_bytes),
            overhead_storage_per_gb_month: self
                .overhead_storage_per_gb_month
                .or(below.overhead_storage_per_gb_month),
            minimum_billable_bytes: self.minimum_billable_bytes.or(below.minimum_billable_bytes),
            upload_per_1000_requests: self
                .upload_per_1000_requests
                .or(below.upload_per_1000_requests),
        }
    }

    /// The prices these settings describe, the Glacier defaults filling the gaps.
    /// Refuses a negative or non-finite price with one line naming it.
    pub fn resolve(self) -> Result<Prices, String> {
        self.resolve_over(Prices::default())
    }

    /// The prices these settings describe, `base` filling the gaps.
    pub fn resolve_over(self, base: Prices) -> Result<Prices, String> {
        let prices = self.fill(base);
        prices.validate()?;
        Ok(prices)
    }

    fn fill(self, base: Prices) -> Prices {
        let settings = self;
        Prices {
            currency: settings.currency.unwrap_or(base.currency),
            storage_per_gb_month: settings
                .storage_per_gb_month
                .unwrap_or(base.storage_per_gb_month),
            minimum_storage_days: settings
                .minimum_storage_days
                .unwrap_or(base.minimum_storage_days),
            expedited: settings.expedited.unwrap_or_default().apply(base.expedited),
            standard: settings.standard.unwrap_or_default().apply(base.standard),
            bulk: settings.bulk.unwrap_or_default().apply(base.bulk),
            overhead_bytes: settings.overhead_bytes.unwrap_or(base.overhead_bytes),
            overhead_standard_bytes: settings
                .overhead_standard_bytes
                .unwrap_or(base.overhead_standard_bytes),
            overhead_storage_per_gb_month: settings
                .overhead_storage_per_gb_month
                .unwrap_or(base.overhead_storage_per_gb_month),
            minimum_billable_bytes: settings
                .minimum_billable_bytes
                .unwrap_or(base.minimum_billable_bytes),
            upload_per_1000_requests: settings
                .upload_per_1000_requests
                .unwrap_or(base.upload_per_1000_requests),
        }
    }
}

impl TryFrom<PriceSettings> for Prices {
    type Error = String;

    fn try_from(settings: PriceSettings) -> Result<Prices, String> {
        settings.resolve()
    }
}

/// A retrieval estimate for one tier: `cost` is `bytes_cost` (per GB) plus
/// `request_cost` (per 1,000 requests, one per archive or pack).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RetrievalEstimate {
    pub tier: Tier,
    pub bytes: u64,
    pub requests: u64,
    pub cost: f64,
    pub bytes_cost: f64,
    pub request_cost: f64,
}

impl Prices {
    /// Prices that make everything free: the embedded local store.
    pub fn free() -> Prices {
        let nothing = TierPrices {
            retrieval_per_gb: 0.0,
            retrieval_per_1000_requests: 0.0,
        };
        Prices {
            currency: "USD".into(),
            storage_per_gb_month: 0.0,
            minimum_storage_days: 0,
            expedited: nothing,
            standard: nothing,
            bulk: nothing,
            overhead_bytes: 0,
            overhead_standard_bytes: 0,
            overhead_storage_per_gb_month: 0.0,
            minimum_billable_bytes: 0,
            upload_per_1000_requests: 0.0,
        }
    }

    /// The prices of a set: what the config says when it has a `[prices]` table,
    /// else Glacier's defaults for a Glacier vault and nothing for the embedded
    /// local store (which has no charges).
    pub fn for_profile(profile: PriceProfile, configured: Option<Prices>) -> Prices {
        configured.unwrap_or_else(|| Prices::defaults_for(profile))
    }

    fn validate(&self) -> Result<(), String> {
        let mut figures = vec![
            (
                "storage_per_gb_month".to_string(),
                self.storage_per_gb_month,
            ),
            (
                "upload_per_1000_requests".to_string(),
                self.upload_per_1000_requests,
            ),
        ];
        for (name, tier) in [
            ("expedited", self.expedited),
            ("standard", self.standard),
            ("bulk", self.bulk),
        ] {
            figures.push((format!("{name}.retrieval_per_gb"), tier.retrieval_per_gb));
            figures.push((
                format!("{name}.retrieval_per_1000_requests"),
                tier.retrieval_per_1000_requests,
            ));
        }
        for (name, value) in figures {
            if !value.is_finite() || value < 0.0 {
                return Err(format!(
                    "price {name} = {value} in [prices] must be a number of at least 0"
                ));
            }
        }
        if self.currency.trim().is_empty() {
            return Err("[prices] currency must not be empty (for example \"USD\")".into());
        }
        Ok(())
    }

    pub fn tier(&self, tier: Tier) -> TierPrices {
        match tier {
            Tier::Expedited => self.expedited,
            Tier::Standard => self.standard,
            Tier::Bulk => self.bulk,
        }
    }

    /// Whole days of the minimum storage period left for an archive uploaded at
    /// `uploaded_at` (Unix seconds): 0 once the period is over. A day begun counts.
    pub fn remaining_minimum_days(&self, uploaded_at: i64, now: i64) -> u32 {
        let age_days = now.saturating_sub(uploaded_at).max(0) / SECS_PER_DAY;
        let remaining = i64::from(self.minimum_storage_days) - age_days;
        remaining.clamp(0, i64::from(u32::MAX)) as u32
    }

    /// Whether deleting this archive now falls inside its minimum storage period.
    pub fn is_early(&self, uploaded_at: i64, now: i64) -> bool {
        self.remaining_minimum_days(uploaded_at, now) > 0
    }

    /// What deleting an archive of `size` bytes uploaded at `uploaded_at` costs at
    /// `now`: the storage charge for the days left of the minimum period, pro-rated
    /// (size in GB × price per GB-month × remaining days / 30). 0 after the period.
    pub fn early_deletion_charge(&self, size: u64, uploaded_at: i64, now: i64) -> f64 {
        let days = self.remaining_minimum_days(uploaded_at, now);
        gb(self.billed_bytes(size)) * self.storage_per_gb_month * f64::from(days) / DAYS_PER_MONTH
    }

    /// Storing `bytes` for one month.
    pub fn monthly_storage(&self, bytes: u64) -> f64 {
        gb(bytes) * self.storage_per_gb_month
    }

    /// Retrieving `bytes` in `archive_count` archives (one request each) at `tier`.
    pub fn retrieval_estimate(&self, bytes: u64, archive_count: u64, tier: Tier) -> f64 {
        gb(bytes) * self.tier(tier).retrieval_per_gb + self.retrieval_requests(archive_count, tier)
    }

    /// The request part of a retrieval: `requests` requests at `tier`.
    pub fn retrieval_requests(&self, requests: u64, tier: Tier) -> f64 {
        requests as f64 / 1000.0 * self.tier(tier).retrieval_per_1000_requests
    }

    /// What `requests` upload requests are charged (S3's PUT class, a vault's
    /// upload requests).
    pub fn upload_requests(&self, requests: u64) -> f64 {
        requests as f64 / 1000.0 * self.upload_per_1000_requests
    }

    /// The estimate of every tier, fastest first.
    pub fn retrieval_estimates(&self, bytes: u64, archive_count: u64) -> Vec<RetrievalEstimate> {
        [Tier::Expedited, Tier::Standard, Tier::Bulk]
            .into_iter()
            .map(|tier| RetrievalEstimate {
                tier,
                bytes,
                requests: archive_count,
                cost: self.retrieval_estimate(bytes, archive_count, tier),
                bytes_cost: gb(bytes) * self.tier(tier).retrieval_per_gb,
                request_cost: self.retrieval_requests(archive_count, tier),
            })
            .collect()
    }

    /// An amount in this currency, for people.
    pub fn format(&self, amount: f64) -> String {
        format_money(amount, &self.currency)
    }
}

/// How many archives and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ArchiveTally {
    pub archives: u64,
    pub bytes: u64,
}

impl ArchiveTally {
    fn add(&mut self, size: u64) {
        self.archives += 1;
        self.bytes += size;
    }
}

/// One pack as [`CostSummary::of`] sums it up.
#[derive(Default)]
struct PackFacts {
    end: u64,
    live: u64,
    files: u64,
    current: bool,
    /// A current file with bytes: restoring the set retrieves the pack.
    requested: bool,
    uploaded_at: i64,
}

/// What a set's archives cost (`firn cost`, the TUI's cost view).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostSummary {
    pub currency: String,
    /// Current versions (one per file).
    pub current: ArchiveTally,
    /// Older versions still stored (superseded, or left `deleting` by an old run).
    pub superseded: ArchiveTally,
    pub total: ArchiveTally,
    /// Storing every archive for a month (overhead included).
    pub monthly_storage: f64,
    /// Of which: what the per-archive overhead and minimum billable size add.
    pub monthly_overhead: f64,
    /// Superseded archives still inside their minimum storage period...
    pub early: ArchiveTally,
    /// ...and what deleting all of them now would be charged.
    pub pending_early_deletion: f64,
    /// Restoring every current archive, per tier (empty archives need no request).
    pub retrieval: Vec<RetrievalEstimate>,
    /// The catalog's own snapshots in the store (in `total` and the storage too).
    pub snapshots: ArchiveTally,
    /// Archives of the set held in other stores (a migration's originals), by
    /// target: not in the figures above, which are this store's at its prices.
    pub other_stores: Vec<OtherStore>,
    /// The objects the store bills (storage, per-object overhead): a pack
    /// once however many files it holds, each file archived alone, each
    /// snapshot.
    pub stored_objects: u64,
    /// Packs of small files, and the bytes they keep for files no longer in
    /// the catalog.
    pub packs: PackTally,
    pub prices: Prices,
}

/// The packs of a set's store. The catalog holds each packed file's place,
/// not the pack's size: a pack's size is known to be at least the end of its
/// last file the catalog keeps, so the dead bytes (files deleted, still in the
/// pack) counted are those before that end — a lower bound (files deleted
/// after it, and the pack's index, are not counted).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PackTally {
    pub packs: u64,
    /// The files the catalog keeps in them, and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Bytes of files deleted (forgotten) that the packs still hold, at least.
    pub dead_bytes_at_least: u64,
    /// What storing those costs per month.
    pub dead_monthly: f64,
}

/// A set's archives in a store it no longer uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OtherStore {
    pub target: String,
    #[serde(flatten)]
    pub tally: ArchiveTally,
}

impl CostSummary {
    /// The costs of `records` (every version the catalog holds). A packed
    /// version is a file like any other in the tallies, but its pack is the
    /// archive the store bills: stored (overhead once per pack) and retrieved
    /// (one request, the whole pack) once, however many members it holds. A
    /// pack's size is taken as the end of its last recorded member.
    pub fn of<'a>(
        records: impl IntoIterator<Item = &'a ArchiveRecord>,
        prices: &Prices,
        now: i64,
    ) -> CostSummary {
        let mut current = ArchiveTally::default();
        let mut superseded = ArchiveTally::default();
        let mut early = ArchiveTally::default();
        let (mut requests, mut retrieved) = (0, 0);
        let mut pending_early_deletion = 0.0;
        let mut billed = 0;
        // Bytes the store holds (files alone, packs up to their known end).
        let mut stored = 0;
        let mut objects = 0;
        // Per pack: its known end, live bytes and files, whether it holds a
        // current version, and when its files were last uploaded.
        let mut packs: std::collections::HashMap<&str, PackFacts> =
            std::collections::HashMap::new();
        for record in records {
            let is_current = record.state == ArchiveState::Current;
            if is_current {
                current.add(record.size);
            } else {
                superseded.add(record.size);
            }
            if let Some(slot) = record.pack {
                // Billed once per pack, below.
                let pack = packs.entry(record.archive_id.as_str()).or_default();
                pack.end = pack.end.max(slot.offset + slot.len);
                pack.live += slot.len;
                pack.files += 1;
                pack.current |= is_current;
                pack.requested |= is_current && record.size > 0;
                pack.uploaded_at = pack.uploaded_at.max(record.uploaded_at);
                continue;
            }
            billed += prices.billed_bytes(record.size);
            stored += record.size;
            objects += 1;
            if is_current {
                if record.size > 0 {
                    requests += 1;
                    retrieved += record.size;
                }
            } else if prices.is_early(record.uploaded_at, now) {
                early.add(record.size);
                pending_early_deletion +=
                    prices.early_deletion_charge(record.size, record.uploaded_at, now);
            }
        }
        let mut tally = PackTally::default();
        for pack in packs.values() {
            billed += prices.billed_bytes(pack.end);
            stored += pack.end;
            objects += 1;
            tally.packs += 1;
            tally.files += pack.files;
            tally.bytes += pack.live;
            tally.dead_bytes_at_least += pack.end.saturating_sub(pack.live);
            if pack.requested {
                // One retrieval request for the pack, however many files; a
                // whole pack is retrieved.
                requests += 1;
                retrieved += pack.end;
            }
            if pack.current {
                // Its superseded files are only forgotten when deleted: free.
            } else if prices.is_early(pack.uploaded_at, now) {
                // Deleting its superseded files deletes the whole pack.
                early.archives += pack.files;
                early.bytes += pack.live;
                pending_early_deletion +=
                    prices.early_deletion_charge(pack.end, pack.uploaded_at, now);
            }
        }
        tally.dead_monthly = prices.monthly_storage(tally.dead_bytes_at_least);
        let total = ArchiveTally {
            archives: current.archives + superseded.archives,
            bytes: current.bytes + superseded.bytes,
        };
        CostSummary {
            currency: prices.currency.clone(),
            current,
            superseded,
            total,
            monthly_storage: prices.monthly_storage(billed)
                + gb(objects * prices.overhead_standard_bytes)
                    * prices.overhead_storage_per_gb_month,
            monthly_overhead: prices.monthly_overhead(objects, stored, billed),
            early,
            pending_early_deletion,
            retrieval: prices.retrieval_estimates(retrieved, requests),
            snapshots: ArchiveTally::default(),
            other_stores: Vec::new(),
            stored_objects: objects,
            packs: tally,
            prices: prices.clone(),
        }
    }

    /// Counts an archive held in another store (left out of every figure).
    pub fn add_other_store(&mut self, target: &str, size: u64) {
        match self.other_stores.iter_mut().find(|o| o.target == target) {
            Some(other) => other.tally.add(size),
            None => {
                let mut tally = ArchiveTally::default();
                tally.add(size);
                self.other_stores.push(OtherStore {
                    target: target.to_string(),
                    tally,
                });
            }
        }
    }

    /// Adds the catalog snapshots (archive sizes) the store holds: they are billed
    /// like any archive.
    pub fn add_snapshots(&mut self, sizes: impl IntoIterator<Item = u64>) {
        let prices = &self.prices;
        let (mut tally, mut billed) = (ArchiveTally::default(), 0);
        for size in sizes {
            tally.add(size);
            billed += prices.billed_bytes(size);
        }
        self.monthly_storage += prices.monthly_storage(billed)
            + gb(tally.archives * prices.overhead_standard_bytes)
                * prices.overhead_storage_per_gb_month;
        self.monthly_overhead += prices.monthly_overhead(tally.archives, tally.bytes, billed);
        self.total.archives += tally.archives;
        self.total.bytes += tally.bytes;
        self.snapshots.archives += tally.archives;
        self.snapshots.bytes += tally.bytes;
        self.stored_objects += tally.archives;
    }
}

/// Bytes as the GB of a price (2^30 bytes).
pub fn gb(bytes: u64) -> f64 {
    bytes as f64 / BYTES_PER_GB
}

/// An amount for people: two decimals from 1 up, four below (cold storage
/// charges are often fractions of a cent), `<0.0001` for what rounds to nothing
/// but is not nothing. `format_money(0.0293, "USD")` is `0.0293 USD`.
pub fn format_money(amount: f64, currency: &str) -> String {
    format!("{} {currency}", format_amount(amount))
}

/// The number of [`format_money`], without the currency.
pub fn format_amount(amount: f64) -> String {
    if !amount.is_finite() {
        return "?".into();
    }
    let magnitude = amount.abs();
    if magnitude == 0.0 {
        "0.00".into()
    } else if magnitude >= 1.0 {
        format!("{amount:.2}")
    } else if magnitude >= 0.000_05 {
        format!("{amount:.4}")
    } else {
        "<0.0001".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const GIB: u64 = 1 << 30;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// A file's record: alone (`pack` None) or at `(offset, len)` of pack `id`.
    fn record(id: &str, state: ArchiveState, size: u64, pack: Option<u64>) -> ArchiveRecord {
        ArchiveRecord {
            key: format!("{id}-{}", pack.unwrap_or(0)),
            raw: None,
            size,
            mtime_ns: 0,
            sha1: [0; 20],
            tree_hash: [0; 32],
            archive_id: id.into(),
            target: "local:/x".into(),
            uploaded_at: 0,
            state,
            host: "h".into(),
            superseded_at: None,
            pack: pack.map(|offset| crate::catalog::PackSlot { offset, len: size }),
        }
    }

    #[test]
    fn a_pack_is_billed_as_one_object_and_its_dead_bytes_are_counted() {
        let p = Prices {
            overhead_bytes: 1000,
            overhead_standard_bytes: 100,
            overhead_storage_per_gb_month: 1.0,
            ..Prices::default()
        };
        use ArchiveState::{Current, Superseded};
        let records = [
            // Pack P: a deleted file at 0..500 left 500 dead bytes before
            // the files kept at 500.. and 800...
            record("P", Current, 300, Some(500)),
            record("P", Superseded, 200, Some(800)),
            // Pack Q: only superseded files, one of them deleted (0..50).
            record("Q", Superseded, 50, Some(50)),
            // A file alone, current.
            record("A", Current, 5000, None),
        ];
        let summary = CostSummary::of(&records, &p, 10 * DAY);
        assert_eq!(summary.stored_objects, 3, "P, Q and A");
        assert_eq!(summary.packs.packs, 2);
        assert_eq!(summary.packs.files, 3);
        assert_eq!(summary.packs.bytes, 550);
        assert_eq!(summary.packs.dead_bytes_at_least, 500 + 50);
        assert!(close(summary.packs.dead_monthly, p.monthly_storage(550)));
        // Storage: each object's billed bytes (P to 1000, Q to 100), once.
        let billed = p.billed_bytes(1000) + p.billed_bytes(100) + p.billed_bytes(5000);
        let overhead = (3 * 100) as f64 / GIB as f64 * 1.0;
        assert!(close(
            summary.monthly_storage,
            p.monthly_storage(billed) + overhead
        ));
        // P's superseded file is free to delete (P stays for its current
        // file); Q goes whole, with its early-deletion charge.
        assert_eq!(summary.early.archives, 1);
        assert!(close(
            summary.pending_early_deletion,
            p.early_deletion_charge(100, 0, 10 * DAY)
        ));
        // Restoring every current file: P once, A once.
        let standard = summary
            .retrieval
            .iter()
            .find(|e| e.tier == Tier::Standard)
            .unwrap();
        assert_eq!(standard.requests, 2);
    }

    #[test]
    fn defaults_are_glacier_us_east_1() {
        let p = Prices::default();
        assert_eq!(p.currency, "USD");
        assert!(close(p.storage_per_gb_month, 0.0036));
        assert_eq!(p.minimum_storage_days, 90);
        assert!(close(p.expedited.retrieval_per_gb, 0.03));
        assert!(close(p.expedited.retrieval_per_1000_requests, 10.0));
        assert!(close(p.standard.retrieval_per_gb, 0.01));
        assert!(close(p.standard.retrieval_per_1000_requests, 0.05));
        assert!(close(p.bulk.retrieval_per_gb, 0.0025));
        assert!(close(p.bulk.retrieval_per_1000_requests, 0.025));
    }

    #[test]
    fn early_deletion_is_the_storage_of_the_remaining_days() {
        let p = Prices::default();
        // Deleted at once: the whole 90 days (3 months) of storage.
        assert!(close(p.early_deletion_charge(GIB, 0, 0), 0.0036 * 3.0));
        // 60 days after upload: 30 days left, one month.
        assert!(close(p.early_deletion_charge(GIB, 0, 60 * DAY), 0.0036));
        // 10 GiB, half a day old: the day begun counts, 90 days left.
        assert!(close(
            p.early_deletion_charge(10 * GIB, 0, DAY / 2),
            10.0 * 0.0036 * 3.0
        ));
        // 89.9 days old: one day left.
        assert_eq!(p.remaining_minimum_days(0, 89 * DAY + DAY * 9 / 10), 1);
        assert!(close(
            p.early_deletion_charge(GIB, 0, 89 * DAY + 1),
            0.0036 / 30.0
        ));
        // From day 90 on, nothing.
        assert_eq!(p.early_deletion_charge(GIB, 0, 90 * DAY), 0.0);
        assert_eq!(p.early_deletion_charge(GIB, 0, 1000 * DAY), 0.0);
        assert!(!p.is_early(0, 90 * DAY));
        assert!(p.is_early(0, 90 * DAY - 1));
        // A clock that went backwards is treated as age 0, not a negative age.
        assert_eq!(p.remaining_minimum_days(100, 0), 90);
    }

    #[test]
    fn storage_and_retrieval_estimates() {
        let p = Prices::default();
        assert!(close(p.monthly_storage(GIB), 0.0036));
        assert!(close(p.monthly_storage(500 * GIB), 1.8));
        // 2 GiB in 1,000 archives, Standard: 2 × 0.01 + 1 × 0.05.
        assert!(close(
            p.retrieval_estimate(2 * GIB, 1000, Tier::Standard),
            0.07
        ));
        // One 1 GiB archive, Expedited: 0.03 + 0.01.
        assert!(close(p.retrieval_estimate(GIB, 1, Tier::Expedited), 0.04));
        assert!(close(
            p.retrieval_estimate(4 * GIB, 2000, Tier::Bulk),
            0.01 + 0.05
        ));
        let all = p.retrieval_estimates(GIB, 1);
        assert_eq!(
            all.iter().map(|e| e.tier).collect::<Vec<_>>(),
            [Tier::Expedited, Tier::Standard, Tier::Bulk]
        );
    }

    #[test]
    fn the_local_store_is_free_unless_prices_are_configured() {
        let local = PriceProfile::Free;
        let free = Prices::for_profile(local, None);
        assert_eq!(free.early_deletion_charge(GIB, 0, 0), 0.0);
        assert!(!free.is_early(0, 0));
        assert_eq!(free.retrieval_estimate(GIB, 10, Tier::Expedited), 0.0);
        let configured = Prices {
            storage_per_gb_month: 1.0,
            ..Prices::default()
        };
        assert_eq!(
            Prices::for_profile(local, Some(configured.clone())),
            configured
        );
    }

    #[test]
    fn a_partial_table_keeps_the_other_defaults_and_refuses_unknown_keys() {
        let prices: Prices =
            toml::from_str("storage_per_gb_month = 2\n[standard]\nretrieval_per_gb = 0.5\n")
                .unwrap();
        assert!(close(prices.storage_per_gb_month, 2.0));
        assert!(close(prices.standard.retrieval_per_gb, 0.5));
        assert!(close(prices.standard.retrieval_per_1000_requests, 0.05));
        assert_eq!(prices.minimum_storage_days, 90);
        let err = toml::from_str::<Prices>("storage_per_gb = 2\n").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn set_prices_override_the_top_level_field_by_field() {
        let top: PriceSettings = toml::from_str(
            "currency = \"EUR\"\nstorage_per_gb_month = 0.004\n[bulk]\nretrieval_per_gb = 0.003\n",
        )
        .unwrap();
        let set: PriceSettings =
            toml::from_str("minimum_storage_days = 180\n[bulk]\nretrieval_per_1000_requests = 1\n")
                .unwrap();
        let prices = set.over(&top).resolve().unwrap();
        assert_eq!(prices.currency, "EUR");
        assert!(close(prices.storage_per_gb_month, 0.004));
        assert_eq!(prices.minimum_storage_days, 180);
        assert!(close(prices.bulk.retrieval_per_gb, 0.003));
        assert!(close(prices.bulk.retrieval_per_1000_requests, 1.0));
        assert!(close(prices.expedited.retrieval_per_gb, 0.03));
    }

    #[test]
    fn a_negative_price_is_refused() {
        let bad: PriceSettings = toml::from_str("storage_per_gb_month = -1\n").unwrap();
        let err = bad.resolve().unwrap_err();
        assert!(err.contains("storage_per_gb_month"), "{err}");
    }

    fn version(
        archive_id: &str,
        size: u64,
        pack: Option<(u64, u64)>,
        state: ArchiveState,
    ) -> ArchiveRecord {
        ArchiveRecord {
            key: format!("{archive_id}-{size}"),
            raw: None,
            size,
            mtime_ns: 0,
            sha1: [0; 20],
            tree_hash: [0; 32],
            archive_id: archive_id.into(),
            target: String::new(),
            uploaded_at: 0,
            state,
            host: String::new(),
            superseded_at: None,
            pack: pack.map(|(offset, len)| crate::catalog::PackSlot { offset, len }),
        }
    }

    #[test]
    fn a_pack_is_stored_and_retrieved_once_whatever_its_members() {
        let p = Prices::defaults_for(PriceProfile::S3(StorageClass::DeepArchive));
        let current = ArchiveState::Current;
        let records = [
            // Three current members and one superseded in pack P (1,000 bytes
            // up to the end of its last member), one file alone, one empty.
            version("P", 100, Some((0, 100)), current),
            version("P", 300, Some((100, 300)), current),
            version("P", 200, Some((400, 200)), ArchiveState::Superseded),
            version("P", 400, Some((600, 400)), current),
            version("A", 5000, None, current),
            version("E", 0, None, current),
            // Pack Q holds only a superseded version: stored, not retrieved.
            version("Q", 50, Some((0, 50)), ArchiveState::Superseded),
        ];
        let summary = CostSummary::of(&records, &p, 0);
        assert_eq!(summary.current.archives, 5, "files, not objects");
        assert_eq!(summary.superseded.archives, 2);
        let standard = summary.retrieval[1];
        assert_eq!(standard.tier, Tier::Standard);
        // Pack P whole and A: two requests; neither Q nor the empty file.
        assert_eq!((standard.requests, standard.bytes), (2, 1000 + 5000));
        // Objects: A, E, P, Q, each with its overhead once.
        let billed = (1000 + 5000 + 50) + 4 * p.overhead_bytes;
        let expected = p.monthly_storage(billed) + gb(4 * p.overhead_standard_bytes) * 0.023;
        assert!(
            close(summary.monthly_storage, expected),
            "{}",
            summary.monthly_storage
        );
        assert!(close(
            summary.monthly_overhead,
            p.monthly_overhead(4, 6050, billed)
        ));
    }

    #[test]
    fn money_reads_well_at_every_scale() {
        assert_eq!(format_money(0.0, "USD"), "0.00 USD");
        assert_eq!(format_money(12.345, "USD"), "12.35 USD");
        assert_eq!(format_money(0.029296875, "USD"), "0.0293 USD");
        assert_eq!(format_money(0.000_01, "EUR"), "<0.0001 EUR");
    }
}
