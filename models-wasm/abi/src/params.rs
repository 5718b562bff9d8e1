//! The parameter block: fitted parameters and the `info` document, embedded in a kernel module.
//!
//! The logistic-regression kernel is compiled once into a *template* module that holds a
//! [`BLOCK_SIZE`]-byte static starting with [`MAGIC`]. The artifact builder finds that static in
//! the template's data segment and overwrites it in place with an encoded block, so producing a
//! model never re-links or re-encodes wasm: same parameters, same bytes.
//!
//! Byte layout (all integers and floats little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 16 | [`MAGIC`] |
//! | 16 | 4 | `n_features` (u32) |
//! | 20 | 4 | `n_values`: number of f64 values that follow the header (u32) |
//! | 24 | 4 | `info_len`: byte length of the info JSON (u32) |
//! | 28 | 4 | reserved, zero |
//! | 32 | 8·n_values | values: `intercept`, then one record per feature in schema order |
//! | 32 + 8·n_values | info_len | the `info` JSON document, UTF-8 |
//!
//! A numeric feature record is `[0.0, mean, scale, coef]`; a categorical one is
//! `[1.0, k, coef_0, …, coef_{k-1}]` for a vocabulary of `k` categories.

/// Marks the start of the block in the template module; appears exactly once in it.
pub const MAGIC: [u8; 16] = *b"modelhost-params";

/// Total size of the block, header included. Big enough for a model with dozens of features and
/// a few thousand vocabulary entries; the encoder refuses anything larger with a clear error.
pub const BLOCK_SIZE: usize = 16 * 1024;

/// Size of the fixed header before the values.
pub const HEADER_SIZE: usize = 32;

const KIND_NUMERIC: f64 = 0.0;
const KIND_CATEGORICAL: f64 = 1.0;

/// Why a block could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamError {
    /// The block does not start with [`MAGIC`].
    BadMagic,
    /// A length in the header points outside the block.
    Truncated,
    /// A feature record has an unknown kind or an impossible vocabulary size.
    BadRecord,
}

/// One feature's parameters, read from a block without copying.
#[derive(Debug, Clone, Copy)]
pub enum FeatureParams<'a> {
    /// `(x - mean) / scale * coef`.
    Numeric { mean: f64, scale: f64, coef: f64 },
    /// `coefs[category index]`, zero for an unknown category.
    Categorical { coefs: F64s<'a> },
}

/// A little-endian `f64` array inside the block, read element by element (the block has no
/// alignment guarantee inside a data segment).
#[derive(Debug, Clone, Copy)]
pub struct F64s<'a> {
    bytes: &'a [u8],
}

impl<'a> F64s<'a> {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.bytes.len() / 8
    }

    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The value at `index`, or `None` past the end.
    pub fn get(&self, index: usize) -> Option<f64> {
        let start = index.checked_mul(8)?;
        let chunk = self.bytes.get(start..start.checked_add(8)?)?;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(chunk);
        Some(f64::from_le_bytes(raw))
    }
}

/// A validated view of a parameter block.
#[derive(Debug, Clone, Copy)]
pub struct ParamView<'a> {
    n_features: usize,
    values: F64s<'a>,
    info: &'a [u8],
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(raw)
}

impl<'a> ParamView<'a> {
    /// Checks the header and every record, so that [`ParamView::features`] cannot fail later.
    pub fn parse(block: &'a [u8]) -> Result<Self, ParamError> {
        if block.len() < HEADER_SIZE || block[..16] != MAGIC {
            return Err(ParamError::BadMagic);
        }
        let n_features = read_u32(block, 16) as usize;
        let n_values = read_u32(block, 20) as usize;
        let info_len = read_u32(block, 24) as usize;
        let values_end = n_values
            .checked_mul(8)
            .and_then(|n| n.checked_add(HEADER_SIZE))
            .ok_or(ParamError::Truncated)?;
        let info_end = values_end
            .checked_add(info_len)
            .ok_or(ParamError::Truncated)?;
        if info_end > block.len() || n_values == 0 {
            return Err(ParamError::Truncated);
        }
        let view = ParamView {
            n_features,
            values: F64s {
                bytes: &block[HEADER_SIZE..values_end],
            },
            info: &block[values_end..info_end],
        };
        // Walk the records once; they must exactly fill the values.
        let mut cursor = 1;
        for _ in 0..n_features {
            cursor = view.record_end(cursor)?;
        }
        if cursor != n_values {
            return Err(ParamError::BadRecord);
        }
        Ok(view)
    }

    fn record_end(&self, start: usize) -> Result<usize, ParamError> {
        let kind = self.values.get(start).ok_or(ParamError::Truncated)?;
        let end = if kind == KIND_NUMERIC {
            start + 4
        } else if kind == KIND_CATEGORICAL {
            let k = self.values.get(start + 1).ok_or(ParamError::Truncated)?;
            if !(k >= 0.0 && k <= (BLOCK_SIZE / 8) as f64 && k == (k as usize) as f64) {
                return Err(ParamError::BadRecord);
            }
            start + 2 + k as usize
        } else {
            return Err(ParamError::BadRecord);
        };
        if end > self.values.len() {
            return Err(ParamError::Truncated);
        }
        Ok(end)
    }

    /// Number of features, i.e. columns per input row.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// The unpenalised intercept.
    pub fn intercept(&self) -> f64 {
        self.values.get(0).unwrap_or(0.0)
    }

    /// The info JSON document.
    pub fn info(&self) -> &'a [u8] {
        self.info
    }

    /// The feature records in schema order.
    pub fn features(&self) -> Features<'a> {
        Features {
            values: self.values,
            cursor: 1,
            remaining: self.n_features,
        }
    }
}

/// Iterator over the feature records of a [`ParamView`].
pub struct Features<'a> {
    values: F64s<'a>,
    cursor: usize,
    remaining: usize,
}

impl<'a> Iterator for Features<'a> {
    type Item = FeatureParams<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let at = self.cursor;
        // Records were validated by `ParamView::parse`, so the reads below stay in range.
        if self.values.get(at)? == KIND_NUMERIC {
            self.cursor = at + 4;
            Some(FeatureParams::Numeric {
                mean: self.values.get(at + 1)?,
                scale: self.values.get(at + 2)?,
                coef: self.values.get(at + 3)?,
            })
        } else {
            let k = self.values.get(at + 1)? as usize;
            self.cursor = at + 2 + k;
            Some(FeatureParams::Categorical {
                coefs: F64s {
                    bytes: self.values.bytes.get((at + 2) * 8..(at + 2 + k) * 8)?,
                },
            })
        }
    }
}

#[cfg(feature = "host")]
pub use encode::{EncodeError, FittedFeature, encode_block};

#[cfg(feature = "host")]
mod encode {
    use super::*;
    use alloc::vec::Vec;

    /// A fitted feature, as the trainer hands it to the encoder.
    #[derive(Debug, Clone, PartialEq)]
    pub enum FittedFeature {
        /// Standardised numeric feature.
        Numeric { mean: f64, scale: f64, coef: f64 },
        /// One-hot encoded categorical feature; one coefficient per vocabulary entry.
        Categorical { coefs: Vec<f64> },
    }

    /// Why a block could not be encoded.
    #[derive(Debug, Clone, PartialEq)]
    pub enum EncodeError {
        /// The encoded parameters and info document exceed [`BLOCK_SIZE`].
        TooLarge { needed: usize },
        /// A parameter is NaN or infinite, or a scale is not positive.
        NonFinite,
    }

    impl core::fmt::Display for EncodeError {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match self {
                EncodeError::TooLarge { needed } => write!(
                    f,
                    "parameters and info need {needed} bytes, more than the {BLOCK_SIZE}-byte parameter block"
                ),
                EncodeError::NonFinite => {
                    write!(f, "a parameter is not finite, or a scale is not positive")
                }
            }
        }
    }

    /// Encodes a block of exactly [`BLOCK_SIZE`] bytes (zero-padded).
    pub fn encode_block(
        intercept: f64,
        features: &[FittedFeature],
        info_json: &[u8],
    ) -> Result<Vec<u8>, EncodeError> {
        let mut values = Vec::with_capacity(1 + 4 * features.len());
        values.push(intercept);
        for feature in features {
            match feature {
                FittedFeature::Numeric { mean, scale, coef } => {
                    if scale.is_nan() || *scale <= 0.0 {
                        return Err(EncodeError::NonFinite);
                    }
                    values.extend_from_slice(&[KIND_NUMERIC, *mean, *scale, *coef]);
                }
                FittedFeature::Categorical { coefs } => {
                    values.push(KIND_CATEGORICAL);
                    values.push(coefs.len() as f64);
                    values.extend_from_slice(coefs);
                }
            }
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(EncodeError::NonFinite);
        }
        let needed = HEADER_SIZE + values.len() * 8 + info_json.len();
        if needed > BLOCK_SIZE {
            return Err(EncodeError::TooLarge { needed });
        }
        let mut block = Vec::with_capacity(BLOCK_SIZE);
        block.extend_from_slice(&MAGIC);
        block.extend_from_slice(&(features.len() as u32).to_le_bytes());
        block.extend_from_slice(&(values.len() as u32).to_le_bytes());
        block.extend_from_slice(&(info_json.len() as u32).to_le_bytes());
        block.extend_from_slice(&0u32.to_le_bytes());
        for v in &values {
            block.extend_from_slice(&v.to_le_bytes());
        }
        block.extend_from_slice(info_json);
        block.resize(BLOCK_SIZE, 0);
        Ok(block)
    }
}

#[cfg(all(test, feature = "host"))]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample() -> alloc::vec::Vec<u8> {
        encode_block(
            0.25,
            &[
                FittedFeature::Numeric {
                    mean: 10.0,
                    scale: 2.0,
                    coef: -0.5,
                },
                FittedFeature::Categorical {
                    coefs: vec![0.1, -0.2, 0.3],
                },
            ],
            br#"{"name":"t"}"#,
        )
        .unwrap()
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let block = sample();
        assert_eq!(block.len(), BLOCK_SIZE);
        let view = ParamView::parse(&block).unwrap();
        assert_eq!(view.n_features(), 2);
        assert_eq!(view.intercept(), 0.25);
        assert_eq!(view.info(), br#"{"name":"t"}"#);
        let features: alloc::vec::Vec<_> = view.features().collect();
        match features[0] {
            FeatureParams::Numeric { mean, scale, coef } => {
                assert_eq!((mean, scale, coef), (10.0, 2.0, -0.5))
            }
            _ => panic!("first feature should be numeric"),
        }
        match features[1] {
            FeatureParams::Categorical { coefs } => {
                assert_eq!(coefs.len(), 3);
                assert_eq!(coefs.get(2), Some(0.3));
                assert_eq!(coefs.get(3), None);
            }
            _ => panic!("second feature should be categorical"),
        }
    }

    #[test]
    fn parse_rejects_corruption() {
        let mut block = sample();
        block[0] = b'X';
        assert_eq!(ParamView::parse(&block).unwrap_err(), ParamError::BadMagic);

        let mut block = sample();
        block[24..28].copy_from_slice(&(BLOCK_SIZE as u32).to_le_bytes());
        assert_eq!(ParamView::parse(&block).unwrap_err(), ParamError::Truncated);

        let mut block = sample();
        // Claim one more feature than the values hold.
        block[16..20].copy_from_slice(&3u32.to_le_bytes());
        assert!(ParamView::parse(&block).is_err());

        // An unknown record kind.
        let mut block = sample();
        block[HEADER_SIZE + 8..HEADER_SIZE + 16].copy_from_slice(&7.0f64.to_le_bytes());
        assert_eq!(ParamView::parse(&block).unwrap_err(), ParamError::BadRecord);
    }

    #[test]
    fn encoder_refuses_oversized_and_non_finite() {
        let huge = vec![b' '; BLOCK_SIZE];
        assert!(matches!(
            encode_block(0.0, &[], &huge),
            Err(EncodeError::TooLarge { .. })
        ));
        let bad = [FittedFeature::Numeric {
            mean: f64::NAN,
            scale: 1.0,
            coef: 0.0,
        }];
        assert_eq!(encode_block(0.0, &bad, b"{}"), Err(EncodeError::NonFinite));
    }
}
