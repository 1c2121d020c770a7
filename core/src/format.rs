//! The on-disk profile records and their damage-tolerant framing.
//!
//! A profile is written for hours while a job runs, and the profiler may be killed (SIGKILL, power
//! loss) or the disk may damage bytes. The layout is chosen so that such damage loses only the
//! frames it touches, and so that a reader never panics and never allocates.
//!
//! # Layout of a file, byte by byte
//!
//! A file is a sequence of frames, nothing else (no file-level header outside the frames):
//!
//! ```text
//! [0x00]?  frame  frame  frame ...
//! frame   = COBS( payload ) 0x00            at most MAX_FRAME_LEN bytes, delimiter included
//! payload = postcard(Record) crc32_le(4)    at most MAX_PAYLOAD_LEN bytes
//! ```
//!
//! - `postcard(Record)`: the record, postcard-encoded: a varint variant index (0 = `Header`, 1 =
//!   `Source`, ...) followed by the fields in declaration order (integers as varints, `f64`/`f32`
//!   as little-endian IEEE bytes, strings as varint length + UTF-8 bytes).
//! - `crc32_le`: CRC-32/ISO-HDLC (the zlib/PNG CRC) of the postcard bytes, 4 bytes little-endian.
//! - `COBS`: Consistent Overhead Byte Stuffing removes every 0x00 from the payload at a cost of one
//!   byte per 254 (plus one), so that 0x00 appears in the file only as the frame delimiter.
//! - The first frame of a file is a [`Header`] whose first fields are [`MAGIC`] and [`VERSION`], so
//!   [`probe`] can tell "not an ea2p profile" or "written by a newer version" from a profile without
//!   decoding the rest. Empty frames (two 0x00 in a row) are padding and are ignored, so a writer may
//!   start a file, or resume after reopening it, with a lone 0x00 to resynchronise.
//!
//! # Why COBS and a CRC
//!
//! COBS makes every frame boundary findable from any position: a reader that meets garbage skips
//! to the next 0x00 and is back in step, so one bad byte costs one frame (two if it creates or
//! removes a delimiter), never the rest of the file. The CRC catches the damage COBS cannot see
//! (flipped bits inside a frame), so a damaged frame is reported as [`SkipReason::BadCrc`] instead of
//! being decoded into wrong numbers. A file cut at any byte ends in a frame without its delimiter,
//! reported as [`SkipReason::TruncatedTail`]; every earlier frame is intact.
//!
//! # Reading
//!
//! [`Decoder`] iterates over a whole file in memory; [`FrameSplitter`] does the same over a file
//! read in chunks with a bounded buffer from the caller. Both yield `Ok(Record)` for each intact
//! frame and `Err(Skipped)` for each damaged stretch, with its byte offset, length and reason.
//!
//! ```
//! use ea2p_core::format::{encode, Decoder, End, ExitStatus, FrameSplitter, Record, MAX_FRAME_LEN};
//!
//! // Writing: one frame per record, appended to the file as is.
//! let mut file = [0u8; 2 * MAX_FRAME_LEN];
//! let rec = Record::End(End { t_ns: 5, exit: ExitStatus::Code(0) });
//! let n = encode(&rec, &mut file).unwrap();
//! let file = &file[..n];
//!
//! // Reading a whole file.
//! let records: Vec<_> = Decoder::new(file).filter_map(Result::ok).collect();
//! assert_eq!(records, [rec.clone()]);
//!
//! // Reading in chunks (here of 3 bytes) with a bounded buffer.
//! let mut buf = [0u8; MAX_FRAME_LEN];
//! let mut splitter = FrameSplitter::new(&mut buf);
//! let mut got = Vec::new();
//! for mut chunk in file.chunks(3) {
//!     while let Some(item) = splitter.next(&mut chunk) {
//!         got.push(item);
//!     }
//! }
//! assert_eq!(splitter.finish(), None); // no partial frame at the end
//! assert_eq!(got, [Ok(rec)]);
//! ```

use heapless::String;
use serde::{Deserialize, Serialize};

use crate::source::{Provenance, RawReading, ReadErrorKind, SourceInfo};
use crate::units::Nanos;

/// The four bytes that open every profile's [`Header`].
pub const MAGIC: [u8; 4] = *b"EA2P";
/// The format version this code writes; bumped on any incompatible change to [`Record`].
///
/// Version 2 added the counter-anomaly [`GapReason`]s (a version-1 reader would skip those frames
/// as undecodable) and widened [`SourceTotal::rejected`] to `u64` (the same varint on the wire).
pub const VERSION: u16 = 2;
/// The oldest format version this code reads: version-1 files decode unchanged, since version 2
/// only appended enum variants.
pub const MIN_READ_VERSION: u16 = 1;

/// Capacity of host names, OS descriptions and CPU model names, in bytes.
pub const HOST_STR_LEN: usize = 64;
/// Capacity of the ea2p version string, in bytes.
pub const VERSION_STR_LEN: usize = 32;
/// Capacity of the command-line summary, in bytes (longer command lines are truncated).
pub const COMMAND_LEN: usize = 128;
/// Capacity of a region name, in bytes.
pub const REGION_NAME_LEN: usize = 64;

/// Largest postcard encoding of any [`Record`], in bytes: the fullest [`Header`] takes 421 (test
/// `fullest_records_fit_max_record_len` in `core/tests/format.rs`), the rest fewer.
pub const MAX_RECORD_LEN: usize = 512;
/// Largest payload (record + 4-byte CRC) inside a frame.
pub const MAX_PAYLOAD_LEN: usize = MAX_RECORD_LEN + CRC_LEN;
/// Largest encoded frame, COBS overhead and the 0x00 delimiter included: size write buffers with it.
pub const MAX_FRAME_LEN: usize = cobs_max_len(MAX_PAYLOAD_LEN) + 1;

const CRC_LEN: usize = 4;
const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The longest COBS encoding of `n` bytes: one code byte per started block of 254.
const fn cobs_max_len(n: usize) -> usize {
    n + n / 254 + 1
}

/// The machine a profile was taken on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Host name (truncated to [`HOST_STR_LEN`]).
    pub hostname: String<HOST_STR_LEN>,
    /// OS and kernel, e.g. `"Linux 6.8.0-45-generic"`.
    pub os: String<HOST_STR_LEN>,
    /// CPU model name as the OS reports it.
    pub cpu_model: String<HOST_STR_LEN>,
    /// Logical CPUs online.
    pub logical_cpus: u32,
    /// Installed memory in bytes (input of the RAM estimator).
    pub memory_bytes: u64,
}

/// The first record of every profile: what, where and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`MAGIC`]; first, so [`probe`] recognises a profile before decoding the rest.
    pub magic: [u8; 4],
    /// The writer's [`VERSION`]; second, for the same reason.
    pub version: u16,
    /// The machine.
    pub host: HostInfo,
    /// Wall-clock start, nanoseconds since the Unix epoch (given by the caller).
    pub start_unix_ns: u64,
    /// The monotonic clock's value at that same instant: every other timestamp in the file is on
    /// the monotonic clock, and this pairs it with wall time.
    pub monotonic_origin_ns: Nanos,
    /// Requested sampling interval.
    pub interval_ns: Nanos,
    /// Version of the ea2p program that wrote the file.
    pub ea2p_version: String<VERSION_STR_LEN>,
    /// The measured command line, truncated to [`COMMAND_LEN`].
    pub command: String<COMMAND_LEN>,
    /// This process's rank in a multi-node run (Slurm/MPI), `None` for a single process.
    pub rank: Option<u32>,
    /// Number of ranks in the run, when known.
    pub world_size: Option<u32>,
}

/// Declares a source once; later records refer to it by `id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceDecl {
    /// Small id, unique within the file, used by samples, gaps and totals.
    pub id: u16,
    /// What the source measures and how.
    pub info: SourceInfo,
}

/// Bit flags of a [`Sample`], one byte on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SampleFlags(pub u8);

impl SampleFlags {
    /// The counter wrapped since the previous reading (handled, recorded for audit).
    pub const WRAP: u8 = 1 << 0;
    /// The counter went backwards (driver reload); the delta was not added.
    pub const RESET: u8 = 1 << 1;
    /// The delta was impossible for the component (above max power x elapsed) and was not added.
    pub const REJECTED: u8 = 1 << 2;
    /// The value comes from a model, not a sensor.
    pub const ESTIMATED: u8 = 1 << 3;

    /// True if every bit of `flag` is set.
    pub const fn contains(self, flag: u8) -> bool {
        self.0 & flag == flag
    }

    /// These flags with `flag`'s bits set too.
    pub const fn with(self, flag: u8) -> Self {
        Self(self.0 | flag)
    }
}

/// One reading of one source: the frame written most often, kept compact (a counter sample one
/// hour into a run is a 32-byte frame; test `sample_frame_is_compact`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The [`SourceDecl::id`] it belongs to.
    pub source: u16,
    /// Monotonic time of the read.
    pub t_ns: Nanos,
    /// The value as the hardware gave it, so a report can recompute everything.
    pub raw: RawReading,
    /// Cumulative energy of this source since the start, joules, as the profiler computed it.
    pub energy_j: f64,
    /// Power over the last interval, watts (f32: plenty for a sensor value, 4 bytes saved).
    pub power_w: f32,
    /// What happened at this reading.
    pub flags: SampleFlags,
}

/// Why a source produced no samples for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GapReason {
    /// Reads failed with this kind of error.
    ReadError(ReadErrorKind),
    /// The device went away (GPU fell off the bus, driver unloaded).
    DeviceLost,
    /// The source was stopped for the rest of the run after failing.
    SourceFailed,
    /// The sampler fell behind its deadlines and missed reads.
    Overrun,
    /// The counter went backwards without wrapping (driver reload): the energy since the last
    /// accepted reading is unknown (format version 2).
    CounterReset,
    /// The counter advanced by more than the component can draw over the whole interval since
    /// the last accepted reading: the delta was not added (format version 2).
    ImplausibleDelta,
    /// The counter read above its declared largest value (`max_energy_range_uj`): the reading
    /// was ignored (format version 2).
    OutOfRange,
    /// The reading's time was not after the previous reading's: ignored (format version 2).
    OutOfOrder,
    /// A power reading that is negative, not finite or above any machine's power: ignored
    /// (format version 2).
    InvalidValue,
    /// A reading of the other kind than the source declared (a power value from a counter
    /// source or the reverse): ignored (format version 2).
    WrongKind,
}

impl GapReason {
    /// Every reason, in the order of [`GapReason::index`].
    pub const ALL: [GapReason; 13] = [
        GapReason::ReadError(ReadErrorKind::PermissionDenied),
        GapReason::ReadError(ReadErrorKind::Gone),
        GapReason::ReadError(ReadErrorKind::Malformed),
        GapReason::ReadError(ReadErrorKind::Other),
        GapReason::DeviceLost,
        GapReason::SourceFailed,
        GapReason::Overrun,
        GapReason::CounterReset,
        GapReason::ImplausibleDelta,
        GapReason::OutOfRange,
        GapReason::OutOfOrder,
        GapReason::InvalidValue,
        GapReason::WrongKind,
    ];

    /// A small index for per-reason tallies: the position in [`GapReason::ALL`].
    pub const fn index(self) -> usize {
        match self {
            GapReason::ReadError(ReadErrorKind::PermissionDenied) => 0,
            GapReason::ReadError(ReadErrorKind::Gone) => 1,
            GapReason::ReadError(ReadErrorKind::Malformed) => 2,
            GapReason::ReadError(ReadErrorKind::Other) => 3,
            GapReason::DeviceLost => 4,
            GapReason::SourceFailed => 5,
            GapReason::Overrun => 6,
            GapReason::CounterReset => 7,
            GapReason::ImplausibleDelta => 8,
            GapReason::OutOfRange => 9,
            GapReason::OutOfOrder => 10,
            GapReason::InvalidValue => 11,
            GapReason::WrongKind => 12,
        }
    }

    /// Short name for reports and JSON keys (`read-error-malformed`, `counter-reset`...).
    pub const fn as_str(self) -> &'static str {
        match self {
            GapReason::ReadError(ReadErrorKind::PermissionDenied) => "read-error-permission-denied",
            GapReason::ReadError(ReadErrorKind::Gone) => "read-error-gone",
            GapReason::ReadError(ReadErrorKind::Malformed) => "read-error-malformed",
            GapReason::ReadError(ReadErrorKind::Other) => "read-error-other",
            GapReason::DeviceLost => "device-lost",
            GapReason::SourceFailed => "source-failed",
            GapReason::Overrun => "overrun",
            GapReason::CounterReset => "counter-reset",
            GapReason::ImplausibleDelta => "implausible-delta",
            GapReason::OutOfRange => "out-of-range",
            GapReason::OutOfOrder => "out-of-order",
            GapReason::InvalidValue => "invalid-value",
            GapReason::WrongKind => "wrong-kind",
        }
    }
}

/// A stretch of time with no valid reading from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The source concerned.
    pub source: u16,
    /// Time of the last good reading before the gap.
    pub from_ns: Nanos,
    /// Time of the first good reading after it (or the end of the run).
    pub to_ns: Nanos,
    /// Why.
    pub reason: GapReason,
}

/// Whether a marker opens or closes a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MarkerKind {
    /// The region starts.
    Begin,
    /// The region ends.
    End,
}

/// A region boundary marked by the measured program (epoch, phase), for energy per region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    /// Region id, the same on its begin and end markers.
    pub region: u32,
    /// Begin or end.
    pub kind: MarkerKind,
    /// Monotonic time of the boundary.
    pub t_ns: Nanos,
    /// Region label (truncated to [`REGION_NAME_LEN`]).
    pub name: String<REGION_NAME_LEN>,
    /// Enclosing region, when regions nest.
    pub parent: Option<u32>,
}

/// Totals of one source at the end of the run; one frame per source, so no large fixed arrays.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SourceTotal {
    /// The source concerned.
    pub source: u16,
    /// Energy over the run, joules.
    pub energy_j: f64,
    /// Average power over the run, watts.
    pub avg_w: f64,
    /// Peak power, watts.
    pub peak_w: f64,
    /// Measured or estimated.
    pub provenance: Provenance,
    /// Samples recorded.
    pub samples: u64,
    /// Readings not used (failed reads, resets, impossible deltas, out-of-range values); `u32`
    /// in format version 1, the same varint on the wire.
    pub rejected: u64,
}

/// How the measured command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
    /// Not known (profiler stopped first, or no command).
    Unknown,
}

/// The last record of a complete profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// Monotonic end time.
    pub t_ns: Nanos,
    /// The measured command's exit.
    pub exit: ExitStatus,
}

/// Every record a profile holds; one per frame.
///
/// Variant order is part of the format (the postcard variant index): append, never reorder.
// The header is ~460 bytes and the rest are small, but there is no allocator to box it, and a
// record is decoded one at a time, so the size costs a copy, not memory.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    /// The file's first record.
    Header(Header),
    /// A source declaration.
    Source(SourceDecl),
    /// A reading.
    Sample(Sample),
    /// A stretch without readings.
    Gap(Gap),
    /// A region boundary.
    Marker(Marker),
    /// Per-source totals at the end.
    SourceTotal(SourceTotal),
    /// End of the run; a file without it was cut short.
    End(End),
}

/// Why [`encode`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is smaller than the frame; [`MAX_FRAME_LEN`] is always enough.
    BufferTooSmall,
    /// The record's postcard encoding is over [`MAX_RECORD_LEN`] (cannot happen with the
    /// capacities above; kept so a future field cannot overflow silently).
    RecordTooLarge,
}

/// Encodes `record` as one frame (postcard, CRC-32, COBS, 0x00) into `out`; returns the length used.
///
/// Writing `&out[..len]` to the file is all a writer does; the frame is self-delimiting.
pub fn encode(record: &Record, out: &mut [u8]) -> Result<usize, EncodeError> {
    let mut payload = [0u8; MAX_PAYLOAD_LEN];
    let body_len = postcard::to_slice(record, &mut payload[..MAX_RECORD_LEN])
        .map_err(|_| EncodeError::RecordTooLarge)?
        .len();
    let crc = CRC32.checksum(&payload[..body_len]);
    payload[body_len..body_len + CRC_LEN].copy_from_slice(&crc.to_le_bytes());
    let payload = &payload[..body_len + CRC_LEN];
    let n = cobs_encode(payload, out).ok_or(EncodeError::BufferTooSmall)?;
    let slot = out.get_mut(n).ok_or(EncodeError::BufferTooSmall)?;
    *slot = 0;
    Ok(n + 1)
}

/// COBS-encodes `src` into `dst`; `None` if `dst` is too small.
fn cobs_encode(src: &[u8], dst: &mut [u8]) -> Option<usize> {
    let mut code_at = 0usize; // where the current block's code byte goes
    let mut w = 1usize; // next write position
    let mut code = 1u8;
    if dst.is_empty() {
        return None;
    }
    for &b in src {
        if b == 0 {
            *dst.get_mut(code_at)? = code;
            code_at = w;
            w += 1;
            code = 1;
        } else {
            *dst.get_mut(w)? = b;
            w += 1;
            code += 1;
            if code == 0xFF {
                *dst.get_mut(code_at)? = code;
                code_at = w;
                w += 1;
                code = 1;
            }
        }
    }
    *dst.get_mut(code_at)? = code;
    Some(w)
}

/// COBS-decodes `src` (no 0x00 inside) into `dst`; `None` if malformed or `dst` is too small.
fn cobs_decode(src: &[u8], dst: &mut [u8]) -> Option<usize> {
    let mut r = 0usize;
    let mut w = 0usize;
    while r < src.len() {
        let code = src[r];
        if code == 0 {
            return None;
        }
        r += 1;
        let run = usize::from(code - 1);
        let block = src.get(r..r + run)?;
        if block.contains(&0) {
            return None;
        }
        dst.get_mut(w..w + run)?.copy_from_slice(block);
        w += run;
        r += run;
        if code != 0xFF && r < src.len() {
            *dst.get_mut(w)? = 0;
            w += 1;
        }
    }
    Some(w)
}

/// Why a stretch of input was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The bytes are not valid COBS (damaged code byte).
    BadCobs,
    /// The payload is too short to hold a CRC.
    TooShort,
    /// The CRC does not match: bytes were damaged.
    BadCrc,
    /// The CRC matches but the bytes are not a record this version knows (newer writer, or a
    /// postcard encoding with trailing bytes).
    Undecodable,
    /// The frame is longer than [`MAX_FRAME_LEN`] (or than a [`FrameSplitter`]'s buffer).
    Oversize,
    /// The input ends inside a frame (file cut short, or still being written).
    TruncatedTail,
}

/// A stretch of input that held no intact frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    /// Byte offset of the stretch from the start of the input.
    pub offset: u64,
    /// Its length in bytes, delimiter included when there is one.
    pub len: u64,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// Decodes one frame's bytes (delimiter excluded, not empty) into a record.
fn decode_frame(frame: &[u8]) -> Result<Record, SkipReason> {
    let mut payload = [0u8; MAX_PAYLOAD_LEN];
    let payload = check_frame(frame, &mut payload)?;
    match postcard::take_from_bytes::<Record>(payload) {
        Ok((record, [])) => Ok(record),
        _ => Err(SkipReason::Undecodable),
    }
}

/// COBS-decodes and CRC-checks a frame into `buf`; returns the record bytes (CRC removed).
fn check_frame<'b>(frame: &[u8], buf: &'b mut [u8]) -> Result<&'b [u8], SkipReason> {
    if frame.len() + 1 > MAX_FRAME_LEN {
        return Err(SkipReason::Oversize);
    }
    let n = cobs_decode(frame, buf).ok_or(SkipReason::BadCobs)?;
    if n <= CRC_LEN {
        return Err(SkipReason::TooShort);
    }
    let (body, crc) = buf[..n].split_at(n - CRC_LEN);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if CRC32.checksum(body) != stored {
        return Err(SkipReason::BadCrc);
    }
    Ok(body)
}

/// Iterates over the frames of a whole file (or any slice of one): `Ok` for each intact record,
/// `Err` for each skipped stretch. Never panics, never allocates.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// Starts at the beginning of `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl Iterator for Decoder<'_> {
    type Item = Result<Record, Skipped>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let rest = self.input.get(self.pos..)?;
            if rest.is_empty() {
                return None;
            }
            let start = self.pos;
            let Some(z) = rest.iter().position(|&b| b == 0) else {
                self.pos = self.input.len();
                return Some(Err(Skipped {
                    offset: start as u64,
                    len: rest.len() as u64,
                    reason: SkipReason::TruncatedTail,
                }));
            };
            self.pos += z + 1;
            if z == 0 {
                continue; // padding
            }
            return Some(decode_frame(&rest[..z]).map_err(|reason| Skipped {
                offset: start as u64,
                len: z as u64 + 1,
                reason,
            }));
        }
    }
}

/// Why [`probe`] says the input is not a profile this version can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeError {
    /// The input ends before its first frame is complete (empty or cut file).
    Truncated,
    /// The first frame is not an ea2p header: not an ea2p profile (or its first frame is damaged).
    NotAProfile,
    /// An ea2p profile of another format version.
    UnsupportedVersion(u16),
}

/// Reads the first frame of `input` and returns its [`Header`], so a reader can say clearly
/// "not an ea2p profile" or "written by format version N" before reading the rest.
pub fn probe(input: &[u8]) -> Result<Header, ProbeError> {
    let start = input.iter().position(|&b| b != 0).unwrap_or(input.len());
    let rest = &input[start..];
    let z = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(ProbeError::Truncated)?;
    let mut buf = [0u8; MAX_PAYLOAD_LEN];
    let body = check_frame(&rest[..z], &mut buf).map_err(|_| ProbeError::NotAProfile)?;
    // Magic and version come first in `Header`, so they decode even if later fields changed.
    let (variant, tail) =
        postcard::take_from_bytes::<u32>(body).map_err(|_| ProbeError::NotAProfile)?;
    let ((magic, version), _) =
        postcard::take_from_bytes::<([u8; 4], u16)>(tail).map_err(|_| ProbeError::NotAProfile)?;
    if variant != 0 || magic != MAGIC {
        return Err(ProbeError::NotAProfile);
    }
    if !(MIN_READ_VERSION..=VERSION).contains(&version) {
        return Err(ProbeError::UnsupportedVersion(version));
    }
    match postcard::take_from_bytes::<Record>(body) {
        Ok((Record::Header(h), [])) => Ok(h),
        _ => Err(ProbeError::NotAProfile),
    }
}

/// Splits a byte stream read in chunks into frames, with a buffer the caller provides.
///
/// Feed each chunk through [`FrameSplitter::next`] until it returns `None`, then read the next
/// chunk; at end of file call [`FrameSplitter::finish`] to learn about a partial last frame.
/// Frames longer than the buffer are skipped as [`SkipReason::Oversize`] without stopping the
/// stream. A buffer of [`MAX_FRAME_LEN`] bytes holds every frame this version writes.
#[derive(Debug)]
pub struct FrameSplitter<'b> {
    buf: &'b mut [u8],
    len: usize,
    /// Stream offset of the first byte of the frame being gathered.
    frame_start: u64,
    /// Bytes of the frame being gathered, including those dropped once it overflowed.
    frame_len: u64,
    overflowed: bool,
}

impl<'b> FrameSplitter<'b> {
    /// A splitter gathering frames in `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self {
            buf,
            len: 0,
            frame_start: 0,
            frame_len: 0,
            overflowed: false,
        }
    }

    /// Consumes bytes from the front of `input` up to and including the next frame's delimiter
    /// and returns that frame's outcome; `None` once `input` is used up with no complete frame
    /// (the partial frame stays buffered for the next chunk).
    pub fn next(&mut self, input: &mut &[u8]) -> Option<Result<Record, Skipped>> {
        loop {
            let chunk = *input;
            if chunk.is_empty() {
                return None;
            }
            let (take, complete) = match chunk.iter().position(|&b| b == 0) {
                Some(z) => (z, true),
                None => (chunk.len(), false),
            };
            let data = &chunk[..take];
            if !self.overflowed {
                match self.buf.get_mut(self.len..self.len + data.len()) {
                    Some(dst) => {
                        dst.copy_from_slice(data);
                        self.len += data.len();
                    }
                    None => self.overflowed = true,
                }
            }
            self.frame_len += data.len() as u64;
            *input = &chunk[take + usize::from(complete)..];
            if !complete {
                return None;
            }
            let skipped = |reason| Skipped {
                offset: self.frame_start,
                len: self.frame_len + 1,
                reason,
            };
            let outcome = if self.frame_len == 0 {
                None // padding
            } else if self.overflowed {
                Some(Err(skipped(SkipReason::Oversize)))
            } else {
                Some(decode_frame(&self.buf[..self.len]).map_err(skipped))
            };
            self.frame_start += self.frame_len + 1;
            self.frame_len = 0;
            self.len = 0;
            self.overflowed = false;
            if outcome.is_some() {
                return outcome;
            }
        }
    }

    /// Ends the stream: reports the bytes of a last frame that never got its delimiter.
    pub fn finish(&mut self) -> Option<Skipped> {
        let out = (self.frame_len > 0).then_some(Skipped {
            offset: self.frame_start,
            len: self.frame_len,
            reason: SkipReason::TruncatedTail,
        });
        self.frame_start += self.frame_len;
        self.frame_len = 0;
        self.len = 0;
        self.overflowed = false;
        out
    }
}

impl core::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ProbeError::Truncated => f.write_str(
                "the file ends before its first record is complete (it is empty or was cut \
                 right at the start)",
            ),
            ProbeError::NotAProfile => f.write_str(
                "its first record is not an ea2p profile header (another kind of file, or its \
                 first bytes are damaged)",
            ),
            ProbeError::UnsupportedVersion(v) => write!(
                f,
                "written in profile format version {v}; this version reads {MIN_READ_VERSION} to \
                 {VERSION}"
            ),
        }
    }
}

impl core::error::Error for ProbeError {}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            EncodeError::BufferTooSmall => "the output buffer is smaller than the frame",
            EncodeError::RecordTooLarge => "the record is larger than a frame may be",
        })
    }
}

impl core::error::Error for EncodeError {}

impl core::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SkipReason::BadCobs => "damaged bytes (not a valid frame encoding)",
            SkipReason::TooShort => "a frame too short to hold its checksum",
            SkipReason::BadCrc => "damaged bytes (checksum mismatch)",
            SkipReason::Undecodable => "a record this version does not know",
            SkipReason::Oversize => "a frame longer than any record",
            SkipReason::TruncatedTail => "the file ends inside a record (cut short)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cobs_round_trips_long_runs() {
        let mut src = [0u8; 600];
        for (i, b) in src.iter_mut().enumerate() {
            *b = if i % 300 == 7 { 0 } else { (i % 251) as u8 + 1 };
        }
        let mut enc = [0u8; 700];
        let n = cobs_encode(&src, &mut enc).unwrap();
        assert!(n <= cobs_max_len(src.len()));
        assert!(!enc[..n].contains(&0));
        let mut dec = [0u8; 600];
        assert_eq!(cobs_decode(&enc[..n], &mut dec), Some(600));
        assert_eq!(dec, src);
    }

    #[test]
    fn bad_cobs_code_is_reported() {
        // Code byte 5 promises 4 bytes, only 2 follow.
        assert_eq!(decode_frame(&[5, 1, 2]), Err(SkipReason::BadCobs));
    }
}
