//! sprig's random functions (their output differs on every render, as
//! with Helm; charts keep such values stable with `lookup`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k3r_gotemplate::{Template, Value};
use rand::Rng;
use rand::distr::Alphanumeric;
use rand::seq::SliceRandom;

use super::args::{arity, int, string, to_int64};

fn random_string(length: i64, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..usize::try_from(length).unwrap_or(0))
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

pub fn register(t: &mut Template) {
    t.func("randAlphaNum", |_, a| {
        arity("randAlphaNum", a, 1)?;
        let n = usize::try_from(int(a, 0)?).unwrap_or(0);
        let s: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(n)
            .map(char::from)
            .collect();
        Ok(Value::from(s))
    });
    t.func("randAlpha", |_, a| {
        arity("randAlpha", a, 1)?;
        Ok(Value::from(random_string(
            int(a, 0)?,
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        )))
    });
    t.func("randNumeric", |_, a| {
        arity("randNumeric", a, 1)?;
        Ok(Value::from(random_string(int(a, 0)?, b"0123456789")))
    });
    t.func("randAscii", |_, a| {
        arity("randAscii", a, 1)?;
        let printable: Vec<u8> = (32u8..127).collect();
        Ok(Value::from(random_string(int(a, 0)?, &printable)))
    });
    t.func("randInt", |_, a| {
        arity("randInt", a, 2)?;
        let (min, max) = (to_int64(&a[0]), to_int64(&a[1]));
        if max <= min {
            return Err("invalid argument to Intn".into());
        }
        Ok(Value::Int(rand::rng().random_range(min..max)))
    });
    t.func("shuffle", |_, a| {
        arity("shuffle", a, 1)?;
        let mut chars: Vec<char> = string(a, 0)?.chars().collect();
        chars.shuffle(&mut rand::rng());
        Ok(Value::from(chars.into_iter().collect::<String>()))
    });
    t.func("randBytes", |_, a| {
        arity("randBytes", a, 1)?;
        let count = usize::try_from(int(a, 0)?).unwrap_or(0);
        let mut bytes = vec![0u8; count];
        rand::rng().fill(bytes.as_mut_slice());
        Ok(Value::from(STANDARD.encode(bytes)))
    });
    t.func("uuidv4", |_, a| {
        arity("uuidv4", a, 0)?;
        let mut bytes: [u8; 16] = rand::rng().random();
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Value::from(format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )))
    });
}
