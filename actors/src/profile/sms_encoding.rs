//! How an SMS body travels: GSM-7 when every character is in the GSM 03.38 alphabet
//! (basic table, or the extension table at two septets each), UCS-2 otherwise; and how
//! many segments it takes (160 / 153 septets, or 70 / 67 UTF-16 units, for a single /
//! concatenated message).

use serde::{Deserialize, Serialize};

/// The character set a message is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmsEncoding {
    Gsm7,
    Ucs2,
}

impl SmsEncoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gsm7 => "GSM-7",
            Self::Ucs2 => "UCS-2",
        }
    }
}

/// A body's encoding and segment count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsShape {
    pub encoding: SmsEncoding,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2).
    pub units: usize,
    pub segments: usize,
}

/// GSM 03.38 basic character table.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38 extension table (each costs an escape septet too).
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{0C}";

/// Septets `c` costs in GSM-7, or `None` when it is not in the alphabet.
fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// The encoding and segment count of `body`.
pub fn shape(body: &str) -> SmsShape {
    let septets: Option<usize> = body.chars().map(gsm7_septets).sum();
    match septets {
        Some(units) => SmsShape {
            encoding: SmsEncoding::Gsm7,
            units,
            segments: segments(units, 160, 153),
        },
        None => {
            let units = body.encode_utf16().count();
            SmsShape {
                encoding: SmsEncoding::Ucs2,
                units,
                segments: segments(units, 70, 67),
            }
        }
    }
}

fn segments(units: usize, single: usize, each_of_many: usize) -> usize {
    if units <= single {
        1
    } else {
        units.div_ceil(each_of_many)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_gsm7_and_segments_at_160_then_153() {
        let one = "a".repeat(160);
        assert_eq!(
            shape(&one),
            SmsShape {
                encoding: SmsEncoding::Gsm7,
                units: 160,
                segments: 1
            }
        );
        assert_eq!(shape(&"a".repeat(161)).segments, 2);
        assert_eq!(shape(&"a".repeat(306)).segments, 2);
        assert_eq!(shape(&"a".repeat(307)).segments, 3);
    }

    #[test]
    fn extension_characters_cost_two_septets() {
        let s = shape("Price: 50€ [deposit]");
        assert_eq!(s.encoding, SmsEncoding::Gsm7);
        assert_eq!(s.units, "Price: 50€ [deposit]".chars().count() + 3);
    }

    #[test]
    fn accents_of_the_alphabet_stay_gsm7_others_switch_to_ucs2() {
        assert_eq!(shape("Señor, ¿mañana?").encoding, SmsEncoding::Gsm7);
        let s = shape("Confirmado ✅");
        assert_eq!(s.encoding, SmsEncoding::Ucs2);
        assert_eq!(shape("á").encoding, SmsEncoding::Ucs2, "á is not in GSM-7");
    }

    #[test]
    fn ucs2_counts_utf16_units_and_segments_at_70_then_67() {
        let s = shape(&"✅".repeat(70));
        assert_eq!((s.units, s.segments), (70, 1));
        assert_eq!(shape(&"✅".repeat(71)).segments, 2);
        // An emoji outside the BMP takes two UTF-16 units.
        assert_eq!(shape("👍").units, 2);
    }
}
