//! Random primes for RSA keys, as fast as Go's: candidates with the top two
//! bits set, sieved by the small primes (residues computed once per random
//! start, then stepped), then Miller-Rabin — base 2 first, which rejects
//! almost every composite, then random bases — in Montgomery form on fixed
//! 64-bit limbs. The exponentiation is a fixed 4-bit window with a
//! constant-time table lookup, so its time depends on the size of the
//! candidate only, as with Go's constant-time bigmod.

use rand::Rng;

/// Odd primes below 2^13, for the sieve.
fn small_primes() -> &'static [u64] {
    static PRIMES: std::sync::OnceLock<Vec<u64>> = std::sync::OnceLock::new();
    PRIMES.get_or_init(|| {
        let limit = 1 << 13;
        let mut composite = vec![false; limit];
        let mut primes = Vec::new();
        for i in 2..limit {
            if !composite[i] {
                if i > 2 {
                    primes.push(i as u64);
                }
                let mut j = i * i;
                while j < limit {
                    composite[j] = true;
                    j += i;
                }
            }
        }
        primes
    })
}

/// Little-endian 64-bit limbs.
type Limbs<const N: usize> = [u64; N];

fn mul_add(a: u64, b: u64, c: u64, carry: u64) -> (u64, u64) {
    let wide = u128::from(a) * u128::from(b) + u128::from(c) + u128::from(carry);
    (wide as u64, (wide >> 64) as u64)
}

/// a - b, and whether it borrowed.
fn sub<const N: usize>(a: &Limbs<N>, b: &Limbs<N>) -> (Limbs<N>, bool) {
    let mut out = [0u64; N];
    let mut borrow = 0u64;
    for i in 0..N {
        let (d1, b1) = a[i].overflowing_sub(b[i]);
        let (d2, b2) = d1.overflowing_sub(borrow);
        out[i] = d2;
        borrow = u64::from(b1 | b2);
    }
    (out, borrow != 0)
}

/// Constant-time choice: `b` when `pick`, else `a`.
fn select<const N: usize>(pick: bool, a: &Limbs<N>, b: &Limbs<N>) -> Limbs<N> {
    let mask = 0u64.wrapping_sub(u64::from(pick));
    let mut out = [0u64; N];
    for i in 0..N {
        out[i] = (a[i] & !mask) | (b[i] & mask);
    }
    out
}

struct Montgomery<const N: usize> {
    n: Limbs<N>,
    /// -n^-1 mod 2^64.
    n0: u64,
    /// R mod n and R^2 mod n, R = 2^(64N).
    one: Limbs<N>,
    r2: Limbs<N>,
}

impl<const N: usize> Montgomery<N> {
    fn new(n: &Limbs<N>) -> Self {
        // Newton's iteration for n^-1 mod 2^64 (n odd).
        let mut inv = 1u64;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(n[0].wrapping_mul(inv)));
        }
        let big = rsa::BigUint::from_slice(&to_u32s(n));
        let r = rsa::BigUint::from(1u8) << (64 * N);
        let one = from_big::<N>(&(&r % &big));
        let r2 = from_big::<N>(&((&r * &r) % &big));
        Montgomery {
            n: *n,
            n0: inv.wrapping_neg(),
            one,
            r2,
        }
    }

    /// a * b / R mod n (CIOS).
    fn mul(&self, a: &Limbs<N>, b: &Limbs<N>) -> Limbs<N> {
        let mut t = [0u64; N];
        let mut top = 0u64;
        for &bi in b.iter() {
            let mut carry = 0;
            for j in 0..N {
                (t[j], carry) = mul_add(a[j], bi, t[j], carry);
            }
            let (sum, over) = top.overflowing_add(carry);
            let extra = u64::from(over);
            let m = t[0].wrapping_mul(self.n0);
            let (_, mut carry) = mul_add(m, self.n[0], t[0], 0);
            for j in 1..N {
                (t[j - 1], carry) = mul_add(m, self.n[j], t[j], carry);
            }
            let (last, over) = sum.overflowing_add(carry);
            t[N - 1] = last;
            top = extra + u64::from(over);
        }
        let (reduced, borrow) = sub(&t, &self.n);
        select(top != 0 || !borrow, &t, &reduced)
    }

    fn to_mont(&self, a: &Limbs<N>) -> Limbs<N> {
        self.mul(a, &self.r2)
    }

    /// base^exp in Montgomery form (base already in it); a fixed 4-bit
    /// window, the table read whole for every window.
    fn pow(&self, base: &Limbs<N>, exp: &Limbs<N>) -> Limbs<N> {
        let mut table = [[0u64; N]; 16];
        table[0] = self.one;
        for i in 1..16 {
            table[i] = self.mul(&table[i - 1], base);
        }
        let mut acc = self.one;
        for limb in exp.iter().rev() {
            for shift in (0..16).rev() {
                for _ in 0..4 {
                    acc = self.mul(&acc, &acc);
                }
                let window = ((limb >> (shift * 4)) & 0xf) as usize;
                let mut chosen = [0u64; N];
                for (i, entry) in table.iter().enumerate() {
                    chosen = select(i == window, &chosen, entry);
                }
                acc = self.mul(&acc, &chosen);
            }
        }
        acc
    }
}

fn to_u32s<const N: usize>(limbs: &Limbs<N>) -> Vec<u32> {
    limbs
        .iter()
        .flat_map(|l| [*l as u32, (*l >> 32) as u32])
        .collect()
}

fn from_big<const N: usize>(value: &rsa::BigUint) -> Limbs<N> {
    let mut out = [0u64; N];
    for (i, chunk) in value.to_bytes_le().chunks(8).enumerate().take(N) {
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        out[i] = u64::from_le_bytes(bytes);
    }
    out
}

/// Miller-Rabin with base 2 and then `rounds` random bases.
fn probably_prime<const N: usize>(n: &Limbs<N>, rounds: usize) -> bool {
    let mont = Montgomery::new(n);
    let mut n_minus_1 = *n;
    n_minus_1[0] -= 1; // n is odd
    let s = n_minus_1
        .iter()
        .enumerate()
        .find(|(_, l)| **l != 0)
        .map_or(0, |(i, l)| i as u32 * 64 + l.trailing_zeros());
    let mut d = [0u64; N];
    for (i, slot) in d.iter_mut().enumerate() {
        let bit = s as usize + i * 64;
        let (word, offset) = (bit / 64, bit % 64);
        let low = n_minus_1.get(word).copied().unwrap_or(0) >> offset;
        let high = if offset == 0 {
            0
        } else {
            n_minus_1.get(word + 1).copied().unwrap_or(0) << (64 - offset)
        };
        *slot = low | high;
    }
    let minus_one = mont.to_mont(&n_minus_1);
    let mut rng = rand::rng();
    for round in 0..=rounds {
        let mut base = [0u64; N];
        if round == 0 {
            base[0] = 2;
        } else {
            // A random base below n (the top limb kept below n's).
            for limb in base.iter_mut() {
                *limb = rng.random();
            }
            base[N - 1] %= n[N - 1].max(1);
            base[0] |= 2;
        }
        let mut x = mont.pow(&mont.to_mont(&base), &d);
        if x == mont.one || x == minus_one {
            continue;
        }
        let mut witness = true;
        for _ in 1..s {
            x = mont.mul(&x, &x);
            if x == minus_one {
                witness = false;
                break;
            }
        }
        if witness {
            return false;
        }
    }
    true
}

/// A random prime of exactly 64*N bits with its top two bits set (so the
/// product of two has exactly 128*N bits).
pub fn random_prime<const N: usize>() -> rsa::BigUint {
    let primes = small_primes();
    let mut rng = rand::rng();
    loop {
        let mut start = [0u64; N];
        for limb in start.iter_mut() {
            *limb = rng.random();
        }
        start[N - 1] |= 0xC000_0000_0000_0000;
        start[0] |= 1;
        let residues: Vec<u64> = primes
            .iter()
            .map(|p| {
                start.iter().rev().fold(0u64, |r, limb| {
                    ((u128::from(r) << 64 | u128::from(*limb)) % u128::from(*p)) as u64
                })
            })
            .collect();
        let mut delta = 0u64;
        while delta < 1 << 20 {
            let divisible = primes
                .iter()
                .zip(&residues)
                .any(|(p, r)| (r + delta).is_multiple_of(*p));
            if !divisible {
                let mut candidate = start;
                let (sum, mut carry) = candidate[0].overflowing_add(delta);
                candidate[0] = sum;
                for limb in candidate.iter_mut().skip(1) {
                    if !carry {
                        break;
                    }
                    (*limb, carry) = limb.overflowing_add(1);
                }
                if !carry && candidate[N - 1] >> 62 == 3 && probably_prime(&candidate, 5) {
                    return rsa::BigUint::from_slice(&to_u32s(&candidate));
                }
            }
            delta += 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn montgomery_matches_bigint() {
        let n_big = random_prime::<4>();
        let n = from_big::<4>(&n_big);
        let mont = Montgomery::new(&n);
        let base = from_big::<4>(&rsa::BigUint::from(123_456_789u64));
        let exp = from_big::<4>(&(&n_big - 3u32));
        let got = mont.mul(&mont.pow(&mont.to_mont(&base), &exp), &[1, 0, 0, 0]);
        let want = rsa::BigUint::from(123_456_789u64).modpow(&(&n_big - 3u32), &n_big);
        assert_eq!(got, from_big::<4>(&want));
    }

    #[test]
    fn primes_are_prime_and_composites_are_not() {
        use num_bigint_dig::prime::probably_prime as reference;
        for _ in 0..5 {
            let p = random_prime::<4>();
            assert_eq!(p.bits(), 256);
            assert!(reference(&p, 20), "{p}");
        }
        // Carmichael numbers and a product of two primes fail.
        for composite in [
            561u64,
            41_041,
            825_265,
            3_215_031_751,
            0xffff_fffb * 0xffff_ffef,
        ] {
            let mut n = [0u64; 2];
            n[0] = composite;
            assert!(!probably_prime(&n, 5), "{composite}");
        }
        let mut seven = [0u64; 2];
        seven[0] = 0xffff_ffff_ffff_ffc5; // 2^64 - 59, prime
        assert!(probably_prime(&seven, 5));
    }
}
