//! The options area of a DHCP message (RFC 2132 section 2): reading it
//! ([`OptionsIter`]), writing it with long options split into instances of
//! at most 255 bytes (RFC 3396, [`OptionWriter`]), and the address list
//! type the options carry ([`Ipv4List`]).

use std::net::Ipv4Addr;

use super::{option, Error, Result};

/// Most data bytes one option instance can carry (the length is one byte).
const MAX_OPTION_DATA: usize = 255;

/// One option as found in a message: its code and data (PAD and END are
/// never yielded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpOption<'a> {
    /// Option code.
    pub code: u8,
    /// Option data, `len` bytes.
    pub data: &'a [u8],
}

/// Iterator over the options of a message; see the module documentation
/// for what is an error. After an error it yields nothing more.
#[derive(Debug, Clone)]
pub struct OptionsIter<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> OptionsIter<'a> {
    /// Iterates over an options area (the bytes after the cookie).
    pub fn new(data: &'a [u8]) -> Self {
        OptionsIter { data, pos: 0, done: false }
    }

    fn fail(&mut self, err: Error) -> Option<Result<DhcpOption<'a>>> {
        self.done = true;
        Some(Err(err))
    }
}

impl<'a> Iterator for OptionsIter<'a> {
    type Item = Result<DhcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            let code = match self.data.get(self.pos) {
                None => return self.fail(Error::MissingEnd),
                Some(&option::PAD) => {
                    self.pos += 1;
                    continue;
                }
                Some(&option::END) => {
                    self.done = true;
                    return None;
                }
                Some(&code) => code,
            };
            let Some(&len) = self.data.get(self.pos + 1) else {
                return self.fail(Error::OptionOverrun { code });
            };
            let start = self.pos + 2;
            let end = start + usize::from(len);
            let Some(data) = self.data.get(start..end) else {
                return self.fail(Error::OptionOverrun { code });
            };
            self.pos = end;
            return Some(Ok(DhcpOption { code, data }));
        }
    }
}

/// A list of IPv4 addresses: as found in a message (4 bytes each), or as
/// given by configuration.
#[derive(Debug, Clone, Copy)]
pub enum Ipv4List<'a> {
    /// Network-order bytes from a message; a length not a multiple of 4
    /// leaves the last partial address out.
    Wire(&'a [u8]),
    /// Addresses from configuration.
    Addrs(&'a [Ipv4Addr]),
}

impl Ipv4List<'_> {
    /// Number of addresses.
    pub fn len(&self) -> usize {
        match self {
            Ipv4List::Wire(bytes) => bytes.len() / 4,
            Ipv4List::Addrs(addrs) => addrs.len(),
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `index`th address.
    pub fn get(&self, index: usize) -> Option<Ipv4Addr> {
        match self {
            Ipv4List::Wire(bytes) => {
                let start = index.checked_mul(4)?;
                let chunk = bytes.get(start..start.checked_add(4)?)?;
                let octets: [u8; 4] = chunk.try_into().ok()?;
                Some(Ipv4Addr::from(octets))
            }
            Ipv4List::Addrs(addrs) => addrs.get(index).copied(),
        }
    }

    /// The addresses in order.
    pub fn iter(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

impl PartialEq for Ipv4List<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Ipv4List<'_> {}

/// Instance size for address lists: 63 whole addresses, so that each
/// instance is a valid list on its own for clients that do not concatenate.
pub(super) const MAX_ADDRESS_LIST_DATA: usize = 252;

/// Bytes an option with `data_len` bytes of data takes on the wire, split
/// into instances of at most 255 bytes (RFC 3396 section 5).
pub fn encoded_option_len(data_len: usize) -> usize {
    encoded_len_in_chunks(data_len, MAX_OPTION_DATA)
}

/// Bytes on the wire of `data_len` bytes in instances of at most `chunk`.
pub(super) fn encoded_len_in_chunks(data_len: usize, chunk: usize) -> usize {
    data_len + 2 * data_len.div_ceil(chunk).max(1)
}

/// Appends options to an options area, splitting long ones (RFC 3396) and
/// always keeping one byte for END.
#[derive(Debug)]
pub struct OptionWriter<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> OptionWriter<'b> {
    /// Writes into `buf`, the options area cut to the size the message may
    /// have (see [`super::Packet::options_mut`]).
    pub fn new(buf: &'b mut [u8]) -> Self {
        OptionWriter { buf, pos: 0 }
    }

    /// Bytes still free for options, the END byte already set aside.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos + 1)
    }

    /// Bytes written so far (END not included).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Appends option `code` with `data`.
    ///
    /// # Errors
    /// [`Error::NoSpace`] (nothing written) if it does not fit.
    pub fn write(&mut self, code: u8, data: &[u8]) -> Result<()> {
        self.write_with(code, data.len(), |sink| data.iter().for_each(|&b| sink.push(b)))
    }

    /// Appends option `code` with `len` data bytes produced by `fill`
    /// through [`OptionSink::push`]; pushes beyond `len` are dropped and a
    /// shortfall is zero-filled, so the framing always holds.
    ///
    /// # Errors
    /// [`Error::NoSpace`] (nothing written) if it does not fit.
    pub fn write_with(
        &mut self,
        code: u8,
        len: usize,
        fill: impl FnOnce(&mut OptionSink<'_>),
    ) -> Result<()> {
        self.write_chunked(code, len, MAX_OPTION_DATA, fill)
    }

    /// As [`OptionWriter::write_with`], for a list of 4-byte addresses:
    /// instances hold whole addresses only.
    ///
    /// # Errors
    /// [`Error::NoSpace`] (nothing written) if it does not fit.
    pub fn write_address_list(
        &mut self,
        code: u8,
        addrs: impl Iterator<Item = Ipv4Addr>,
        count: usize,
    ) -> Result<()> {
        self.write_chunked(code, count * 4, MAX_ADDRESS_LIST_DATA, |sink| {
            addrs.flat_map(|a| a.octets()).for_each(|b| sink.push(b));
        })
    }

    /// Writes `len` data bytes from `fill` in instances of at most `chunk`
    /// bytes (1..=255).
    fn write_chunked(
        &mut self,
        code: u8,
        len: usize,
        chunk: usize,
        fill: impl FnOnce(&mut OptionSink<'_>),
    ) -> Result<()> {
        let chunk = chunk.clamp(1, MAX_OPTION_DATA);
        let total = encoded_len_in_chunks(len, chunk);
        if total > self.remaining() {
            return Err(Error::NoSpace);
        }
        let region = self.buf.get_mut(self.pos..self.pos + total).ok_or(Error::NoSpace)?;
        let mut sink = OptionSink { buf: region, pos: 0, code, len, chunk, written: 0 };
        if len == 0 {
            sink.put(code);
            sink.put(0);
        } else {
            fill(&mut sink);
            while sink.written < len {
                sink.push(0);
            }
        }
        self.pos += total;
        Ok(())
    }

    /// Writes END and returns the length of the options area used, END
    /// included.
    ///
    /// # Errors
    /// [`Error::NoSpace`] only if the area given to [`OptionWriter::new`]
    /// was empty: every write keeps a byte for END.
    pub fn finish(self) -> Result<usize> {
        let slot = self.buf.get_mut(self.pos).ok_or(Error::NoSpace)?;
        *slot = option::END;
        Ok(self.pos + 1)
    }
}

/// Receives the data bytes of one option from [`OptionWriter::write_with`]
/// and inserts the code/length header of each 255-byte instance.
#[derive(Debug)]
pub struct OptionSink<'s> {
    buf: &'s mut [u8],
    pos: usize,
    code: u8,
    len: usize,
    /// Data bytes per instance, 1..=255.
    chunk: usize,
    written: usize,
}

impl OptionSink<'_> {
    /// Appends one data byte.
    pub fn push(&mut self, byte: u8) {
        if self.written >= self.len {
            return;
        }
        if self.written % self.chunk == 0 {
            let chunk = (self.len - self.written).min(self.chunk);
            self.put(self.code);
            // Cannot truncate: min() above.
            self.put(chunk as u8);
        }
        self.put(byte);
        self.written += 1;
    }

    fn put(&mut self, byte: u8) {
        if let Some(slot) = self.buf.get_mut(self.pos) {
            *slot = byte;
        }
        self.pos += 1;
    }
}
