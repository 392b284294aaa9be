//! sprig's cryptographic functions: private keys and certificates in the
//! PEM forms Go writes (RSA keys as PKCS#1, EC keys as SEC1), bcrypt and
//! htpasswd, AES-256-CBC as sprig frames it, and the Master Password
//! algorithm behind derivePassword.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k3r_gotemplate::{FuncError, Object, Template, Value};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::EncodePrivateKey;

use super::args::{Result, arity, int, string, strslice};

fn call(message: impl std::fmt::Display) -> FuncError {
    FuncError::Call(message.to_string())
}

/// sprig's `certificate`: `.Cert` and `.Key`, PEM.
#[derive(Debug)]
struct Certificate {
    cert: String,
    key: String,
}

impl Object for Certificate {
    fn type_name(&self) -> &str {
        "sprig.certificate"
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Cert" => Some(Value::from(self.cert.clone())),
            "Key" => Some(Value::from(self.key.clone())),
            _ => None,
        }
    }
    fn method(&self, _: &str, _: &[Value]) -> Option<std::result::Result<Value, String>> {
        None
    }
    fn format(&self) -> String {
        format!("{{{} {}}}", self.cert, self.key)
    }
    fn to_data(&self) -> Value {
        k3r_gotemplate::map_of([
            ("Cert".to_string(), Value::from(self.cert.clone())),
            ("Key".to_string(), Value::from(self.key.clone())),
        ])
    }
}

/// A fresh key in Go's PEM form, and the same key for signing.
struct Key {
    pem: String,
    pair: KeyPair,
}

/// An RSA key as Go makes one: two primes of half the size, top two bits
/// set so that their product has exactly `bits` bits, e = 65537. The
/// primes come from k3r-primes and are searched for side by side on two
/// threads (the rsa crate's own generator took four times as long as Go
/// for the 2048-bit keys of genCA).
fn rsa_private_key(bits: usize) -> Result<rsa::RsaPrivateKey> {
    match bits {
        2048 => key_from_primes::<16>(),
        4096 => key_from_primes::<32>(),
        _ => rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).map_err(call),
    }
}

fn key_from_primes<const LIMBS: usize>() -> Result<rsa::RsaPrivateKey> {
    loop {
        let (p, q) = std::thread::scope(|s| {
            let other = s.spawn(k3r_primes::random_prime::<LIMBS>);
            let mine = k3r_primes::random_prime::<LIMBS>();
            (mine, other.join())
        });
        let Ok(q) = q else {
            return Err(call("prime search failed"));
        };
        if p == q {
            continue;
        }
        // from_p_q refuses primes for which 65537 has no inverse.
        if let Ok(mut key) = rsa::RsaPrivateKey::from_p_q(p, q, rsa::BigUint::from(65_537u32)) {
            key.precompute().map_err(call)?;
            return Ok(key);
        }
    }
}

fn rsa_key(bits: usize) -> Result<Key> {
    let key = rsa_private_key(bits)?;
    let pem = key
        .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
        .map_err(call)?
        .to_string();
    let der = key.to_pkcs8_der().map_err(call)?;
    let pair =
        KeyPair::from_pkcs8_der_and_sign_algo(&der.as_bytes().into(), &rcgen::PKCS_RSA_SHA256)
            .map_err(call)?;
    Ok(Key { pem, pair })
}

/// A fresh P-256 key as Go's genPrivateKey "ecdsa" writes it. ring makes
/// the key (its P-256 is assembly, as Go's; the p256 crate took ten times
/// as long); its PKCS#8 document carries the private scalar after the
/// OCTET STRING header `04 20` and ends with the 65-byte public point.
fn ecdsa_pem() -> Result<String> {
    let document = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &ring::rand::SystemRandom::new(),
    )
    .map_err(|_| call("ecdsa key generation failed"))?;
    let der = document.as_ref();
    let scalar_at = der
        .windows(3)
        .position(|w| w == [0x02, 0x01, 0x01])
        .map(|i| i + 5)
        .filter(|at| der.get(at - 2..*at) == Some(&[0x04, 0x20][..]))
        .ok_or_else(|| call("unexpected PKCS#8 layout from ring"))?;
    let public = der
        .len()
        .checked_sub(65)
        .map(|at| &der[at..])
        .filter(|point| point.first() == Some(&0x04))
        .ok_or_else(|| call("unexpected PKCS#8 layout from ring"))?;
    Ok(sec1_pem(&der[scalar_at..scalar_at + 32], public))
}

/// SEC1 "EC PRIVATE KEY" with the curve named, as Go's
/// MarshalECPrivateKey writes it (the p256 crate leaves the curve out,
/// which openssl cannot read).
fn sec1_pem(scalar: &[u8], public_point: &[u8]) -> String {
    const PRIME256V1: [u8; 12] = [
        0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ];
    let mut der = vec![0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20];
    der.extend_from_slice(scalar);
    der.extend_from_slice(&PRIME256V1);
    der.extend_from_slice(&[0xa1, 0x44, 0x03, 0x42, 0x00]);
    der.extend_from_slice(public_point);
    pem_block("EC PRIVATE KEY", &der)
}

/// PEM with 64-character lines, as Go's pem.Encode writes.
fn pem_block(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A fresh Ed25519 key as Go's MarshalPKCS8PrivateKey writes it (PKCS#8
/// v1: the seed only).
fn ed25519_pem() -> String {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let seed: [u8; 32] = rand::random();
    let mut der = PREFIX.to_vec();
    der.extend_from_slice(&seed);
    pem_block("PRIVATE KEY", &der)
}

/// A key given as PEM (PKCS#1 RSA, SEC1 EC or PKCS#8), as sprig's
/// parsePrivateKeyPEM accepts them.
fn parse_key(pem: &str) -> Result<KeyPair> {
    let bad = || call("error decoding private key: unsupported or invalid key");
    if pem.contains("BEGIN RSA PRIVATE KEY") {
        let key = <rsa::RsaPrivateKey as rsa::pkcs1::DecodeRsaPrivateKey>::from_pkcs1_pem(pem)
            .map_err(|_| bad())?;
        let der = key.to_pkcs8_der().map_err(call)?;
        return KeyPair::from_pkcs8_der_and_sign_algo(
            &der.as_bytes().into(),
            &rcgen::PKCS_RSA_SHA256,
        )
        .map_err(|_| bad());
    }
    if pem.contains("BEGIN EC PRIVATE KEY") {
        let key = p256::SecretKey::from_sec1_pem(pem).map_err(|_| bad())?;
        let der = p256::pkcs8::EncodePrivateKey::to_pkcs8_der(&key).map_err(call)?;
        return KeyPair::from_pkcs8_der_and_sign_algo(
            &der.as_bytes().into(),
            &rcgen::PKCS_ECDSA_P256_SHA256,
        )
        .map_err(|_| bad());
    }
    if pem.contains("BEGIN PRIVATE KEY") && pem.contains("-----END PRIVATE KEY-----") {
        // RSA keys in PKCS#8 need their algorithm named for ring.
        if let Ok(key) = <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_pem(pem) {
            let der = key.to_pkcs8_der().map_err(call)?;
            return KeyPair::from_pkcs8_der_and_sign_algo(
                &der.as_bytes().into(),
                &rcgen::PKCS_RSA_SHA256,
            )
            .map_err(|_| bad());
        }
        return KeyPair::from_pem(pem).map_err(|_| bad());
    }
    Err(bad())
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Positive, below 2^128, as Go's rand.Int(rand.Reader, 2^128).
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

/// sprig's getBaseCertTemplate.
fn base_params(cn: &str, ips: &[Value], dns: &[Value], days: i64) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, cn.to_string());
    params.serial_number = Some(random_serial());
    let now = SystemTime::now();
    params.not_before = now.into();
    let valid = Duration::from_secs(u64::try_from(days.max(0)).unwrap_or(0) * 86_400);
    params.not_after = (now + valid).into();
    params.key_usages = vec![
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    // Go marks every sprig certificate with basic constraints.
    params.is_ca = IsCa::ExplicitNoCa;
    // Go writes DNS names before IP addresses.
    for name in dns {
        let name = super::args::strval(name);
        params.subject_alt_names.push(SanType::DnsName(
            name.clone()
                .try_into()
                .map_err(|_| call(format!("invalid DNS name {name:?}")))?,
        ));
    }
    for ip in ips {
        let text = super::args::strval(ip);
        let parsed: std::net::IpAddr = text
            .parse()
            .map_err(|_| call(format!("error parsing ip: {text}")))?;
        params.subject_alt_names.push(SanType::IpAddress(parsed));
    }
    Ok(params)
}

fn ca_params(cn: &str, days: i64) -> Result<CertificateParams> {
    let mut params = base_params(cn, &[], &[], days)?;
    params.key_usages = vec![
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    Ok(params)
}

fn certificate(cert: String, key: String) -> Value {
    Value::Object(Arc::new(Certificate { cert, key }))
}

fn list(args: &[Value], i: usize, name: &str) -> Result<Vec<Value>> {
    match &args[i] {
        Value::List(items) => Ok(items.to_vec()),
        Value::Nil => Ok(Vec::new()),
        other => Err(FuncError::Arg(format!(
            "wrong type for value; expected []interface {{}}; got {} (in {name})",
            other.type_name()
        ))),
    }
}

/// (cn, ips, alternateDNS, daysValid): the arguments every certificate
/// function starts with.
fn cert_params(a: &[Value], name: &str) -> Result<CertificateParams> {
    base_params(
        &string(a, 0)?,
        &list(a, 1, name)?,
        &list(a, 2, name)?,
        int(a, 3)?,
    )
}

fn self_signed(params: CertificateParams, key: Key) -> Result<Value> {
    let cert = params.self_signed(&key.pair).map_err(call)?;
    Ok(certificate(cert.pem(), key.pem))
}

fn ca_of(value: &Value) -> Result<(String, String)> {
    match value {
        Value::Object(object) if object.type_name() == "sprig.certificate" => {
            let field = |n| object.field(n).map(|v| super::args::strval(&v));
            Ok((
                field("Cert").unwrap_or_default(),
                field("Key").unwrap_or_default(),
            ))
        }
        other => Err(FuncError::Arg(format!(
            "wrong type for value; expected sprig.certificate; got {}",
            other.type_name()
        ))),
    }
}

fn signed(params: CertificateParams, key: Key, ca: &Value) -> Result<Value> {
    let (ca_cert, ca_key) = ca_of(ca)?;
    let ca_key = parse_key(&ca_key)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_cert, ca_key)
        .map_err(|e| call(format!("error parsing ca cert: {e}")))?;
    let mut params = params;
    // Go names the issuing key (the CA's subject key id).
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key.pair, &issuer).map_err(call)?;
    Ok(certificate(cert.pem(), key.pem))
}

fn given_key(pem: &str) -> Result<Key> {
    Ok(Key {
        pem: pem.to_string(),
        pair: parse_key(pem)?,
    })
}

pub fn register(t: &mut Template) {
    t.func("genPrivateKey", |_, a| {
        arity("genPrivateKey", a, 1)?;
        let kind = string(a, 0)?;
        let key = match kind.as_str() {
            // Only the PEM: no signing key pair to build.
            "rsa" => rsa_private_key(4096).and_then(|key| {
                key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
                    .map(|pem| pem.to_string())
                    .map_err(call)
            }),
            "ecdsa" => ecdsa_pem(),
            "ed25519" => Ok(ed25519_pem()),
            "dsa" => Err(call("DSA keys are not supported")),
            other => return Ok(Value::from(format!("Unknown type {other}"))),
        };
        Ok(Value::from(key.unwrap_or_else(|e| {
            let (FuncError::Call(message) | FuncError::Arg(message)) = e;
            format!("failed to generate private key: {message}")
        })))
    });
    t.func("genCA", |_, a| {
        arity("genCA", a, 2)?;
        self_signed(ca_params(&string(a, 0)?, int(a, 1)?)?, rsa_key(2048)?)
    });
    t.func("genCAWithKey", |_, a| {
        arity("genCAWithKey", a, 3)?;
        self_signed(
            ca_params(&string(a, 0)?, int(a, 1)?)?,
            given_key(&string(a, 2)?)?,
        )
    });
    t.func("genSelfSignedCert", |_, a| {
        arity("genSelfSignedCert", a, 4)?;
        let params = cert_params(a, "genSelfSignedCert")?;
        self_signed(params, rsa_key(2048)?)
    });
    t.func("genSelfSignedCertWithKey", |_, a| {
        arity("genSelfSignedCertWithKey", a, 5)?;
        let params = cert_params(a, "genSelfSignedCertWithKey")?;
        self_signed(params, given_key(&string(a, 4)?)?)
    });
    t.func("genSignedCert", |_, a| {
        arity("genSignedCert", a, 5)?;
        let params = cert_params(a, "genSignedCert")?;
        signed(params, rsa_key(2048)?, &a[4])
    });
    t.func("genSignedCertWithKey", |_, a| {
        arity("genSignedCertWithKey", a, 6)?;
        let params = cert_params(a, "genSignedCertWithKey")?;
        signed(params, given_key(&string(a, 5)?)?, &a[4])
    });
    t.func("buildCustomCert", |_, a| {
        arity("buildCustomCert", a, 2)?;
        let decode = |i: usize, what: &str| -> Result<String> {
            let bytes = STANDARD
                .decode(string(a, i)?)
                .map_err(|e| call(format!("unable to decode base64 {what}: {e}")))?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        };
        let cert = decode(0, "certificate")?;
        let key = decode(1, "private key")?;
        if !cert.contains("-----BEGIN CERTIFICATE-----") {
            return Err(call("unable to decode certificate"));
        }
        parse_key(&key)?;
        Ok(certificate(cert, key))
    });
    t.func("bcrypt", |_, a| {
        arity("bcrypt", a, 1)?;
        Ok(Value::from(bcrypt_hash(&string(a, 0)?)?))
    });
    t.func("htpasswd", |_, a| {
        super::args::at_least("htpasswd", a, 2)?;
        let user = string(a, 0)?;
        if user.contains(':') {
            return Ok(Value::from(format!("invalid username: {user}")));
        }
        Ok(Value::from(format!(
            "{user}:{}",
            bcrypt_hash(&string(a, 1)?)?
        )))
    });
    t.func("encryptAES", |_, a| {
        arity("encryptAES", a, 2)?;
        encrypt_aes(&string(a, 0)?, &string(a, 1)?).map(Value::from)
    });
    t.func("decryptAES", |_, a| {
        arity("decryptAES", a, 2)?;
        decrypt_aes(&string(a, 0)?, &string(a, 1)?).map(Value::from)
    });
    t.func("derivePassword", |_, a| {
        arity("derivePassword", a, 5)?;
        let counter = u32::try_from(super::args::to_int64(&a[0])).unwrap_or(0);
        let strings: Vec<String> = strslice(&Value::List(Arc::new(a[1..].to_vec())));
        Ok(Value::from(derive_password(
            counter,
            &strings[0],
            &strings[1],
            &strings[2],
            &strings[3],
        )))
    });
}

/// Go's bcrypt.GenerateFromPassword at the default cost: `$2a$10$…`.
fn bcrypt_hash(password: &str) -> Result<String> {
    let parts = bcrypt::hash_with_result(password, 10).map_err(call)?;
    Ok(parts.format_for_version(bcrypt::Version::TwoA))
}

/// The key sprig derives from a password: its bytes, zero-padded or cut to 32.
fn aes_key(password: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    let bytes = password.as_bytes();
    let n = bytes.len().min(32);
    key[..n].copy_from_slice(&bytes[..n]);
    key
}

type Encryptor = cbc::Encryptor<aes::Aes256>;
type Decryptor = cbc::Decryptor<aes::Aes256>;

/// base64(IV ‖ AES-256-CBC(PKCS#7-padded text)); empty text stays empty.
fn encrypt_aes(password: &str, text: &str) -> Result<String> {
    use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
    if text.is_empty() {
        return Ok(String::new());
    }
    let iv: [u8; 16] = rand::random();
    let encrypted = Encryptor::new(&aes_key(password).into(), &iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(text.as_bytes());
    let mut out = iv.to_vec();
    out.extend_from_slice(&encrypted);
    Ok(STANDARD.encode(out))
}

fn decrypt_aes(password: &str, encoded: &str) -> Result<String> {
    use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::NoPadding};
    let data = STANDARD.decode(encoded).map_err(call)?;
    if data.len() < 16 {
        return Err(call("ciphertext too short"));
    }
    let (iv, body) = data.split_at(16);
    if body.len() % 16 != 0 {
        return Err(call("ciphertext is not a multiple of the block size"));
    }
    let mut plain = Decryptor::new(&aes_key(password).into(), iv.into())
        .decrypt_padded_vec_mut::<NoPadding>(body)
        .map_err(|e| call(e.to_string()))?;
    // sprig strips as many bytes as the last one says; more than there
    // are is Go's slice panic, which Helm reports as an error.
    let pad = usize::from(plain.last().copied().unwrap_or(0));
    let Some(kept) = plain.len().checked_sub(pad) else {
        return Err(call(format!(
            "runtime error: slice bounds out of range [:{}]",
            plain.len() as i64 - pad as i64
        )));
    };
    plain.truncate(kept);
    Ok(String::from_utf8_lossy(&plain).into_owned())
}

/// The Master Password algorithm (v3), as sprig implements it.
fn derive_password(counter: u32, template: &str, password: &str, user: &str, site: &str) -> String {
    use hmac::Mac;
    const SCOPE: &str = "com.lyndir.masterpassword";
    let templates: &[&str] = match template {
        "maximum" => &["anoxxxxxxxxxxxxxxxxx", "axxxxxxxxxxxxxxxxxno"],
        "long" => &[
            "CvcvnoCvcvCvcv",
            "CvcvCvcvnoCvcv",
            "CvcvCvcvCvcvno",
            "CvccnoCvcvCvcv",
            "CvccCvcvnoCvcv",
            "CvccCvcvCvcvno",
            "CvcvnoCvccCvcv",
            "CvcvCvccnoCvcv",
            "CvcvCvccCvcvno",
            "CvcvnoCvcvCvcc",
            "CvcvCvcvnoCvcc",
            "CvcvCvcvCvccno",
            "CvccnoCvccCvcv",
            "CvccCvccnoCvcv",
            "CvccCvccCvcvno",
            "CvcvnoCvccCvcc",
            "CvcvCvccnoCvcc",
            "CvcvCvccCvccno",
            "CvccnoCvcvCvcc",
            "CvccCvcvnoCvcc",
            "CvccCvcvCvccno",
        ],
        "medium" => &["CvcnoCvc", "CvcCvcno"],
        "short" => &["Cvcn"],
        "basic" => &["aaanaaan", "aannaaan", "aaannaaa"],
        "pin" => &["nnnn"],
        _ => return format!("cannot find password template {template}"),
    };
    let classes = |c: char| -> &'static str {
        match c {
            'V' => "AEIOU",
            'C' => "BCDFGHJKLMNPQRSTVWXYZ",
            'v' => "aeiou",
            'c' => "bcdfghjklmnpqrstvwxyz",
            'A' => "AEIOUBCDFGHJKLMNPQRSTVWXYZ",
            'a' => "AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz",
            'n' => "0123456789",
            'o' => "@&%?,=[]_:-+*$#!'^~;()/.",
            'x' => "AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789!@#$%^&*()",
            _ => "",
        }
    };
    let user_len = u32::try_from(user.len()).unwrap_or(0);
    let mut salt = SCOPE.as_bytes().to_vec();
    salt.extend_from_slice(&user_len.to_be_bytes());
    salt.extend_from_slice(user.as_bytes());
    let mut master = [0u8; 64];
    let Ok(params) = scrypt::Params::new(15, 8, 2, 64) else {
        return "scrypt parameters".into();
    };
    if scrypt::scrypt(password.as_bytes(), &salt, &params, &mut master).is_err() {
        return "scrypt failed".into();
    }
    let site_len = u32::try_from(site.len()).unwrap_or(0);
    let mut seed_input = SCOPE.as_bytes().to_vec();
    seed_input.extend_from_slice(&site_len.to_be_bytes());
    seed_input.extend_from_slice(site.as_bytes());
    seed_input.extend_from_slice(&counter.to_be_bytes());
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(&master) else {
        return "hmac key".into();
    };
    mac.update(&seed_input);
    let seed = mac.finalize().into_bytes();
    let chosen = templates[usize::from(seed[0]) % templates.len()];
    chosen
        .chars()
        .enumerate()
        .map(|(i, class)| {
            let chars: Vec<char> = classes(class).chars().collect();
            chars[usize::from(seed[i + 1]) % chars.len()]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_round_trip_and_sprig_framing() {
        let encrypted = encrypt_aes("key", "hello world").expect("encrypt");
        assert_eq!(STANDARD.decode(&encrypted).expect("b64").len(), 32);
        assert_eq!(
            decrypt_aes("key", &encrypted).expect("decrypt"),
            "hello world"
        );
        assert_eq!(encrypt_aes("key", "").expect("empty"), "");
        assert!(decrypt_aes("key", "AAAA").is_err());
    }

    #[test]
    fn derive_password_matches_the_master_password_vector() {
        // sprig's documented example, checked against Helm v4.
        assert_eq!(
            derive_password(1, "long", "password", "user", "example.com"),
            "ZedaFaxcZaso9*"
        );
    }
}
