//! The cipher suites the probes offer, by what is wrong with them. Values
//! and names from the IANA TLS Cipher Suites registry.

/// What a suite lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    /// No encryption or no authentication at all.
    NullOrAnonymous,
    /// Export grade: 40- or 56-bit keys, broken in minutes (FREAK, Logjam).
    Export,
    Rc4,
    /// 64-bit blocks (Sweet32).
    TripleDes,
    /// RSA key exchange: one stolen key decrypts every recorded session.
    NoForwardSecrecy,
    /// CBC with forward secrecy: padding-oracle prone (Lucky13), but
    /// acceptable beside AEAD suites.
    Cbc,
}

pub struct Suite {
    pub id: u16,
    pub name: &'static str,
    pub weakness: Weakness,
}

const fn suite(id: u16, name: &'static str, weakness: Weakness) -> Suite {
    Suite { id, name, weakness }
}

use Weakness::*;

pub const WEAK: &[Suite] = &[
    suite(0x0001, "TLS_RSA_WITH_NULL_MD5", NullOrAnonymous),
    suite(0x0002, "TLS_RSA_WITH_NULL_SHA", NullOrAnonymous),
    suite(0x003b, "TLS_RSA_WITH_NULL_SHA256", NullOrAnonymous),
    suite(0xc006, "TLS_ECDHE_ECDSA_WITH_NULL_SHA", NullOrAnonymous),
    suite(0xc010, "TLS_ECDHE_RSA_WITH_NULL_SHA", NullOrAnonymous),
    suite(0x0018, "TLS_DH_anon_WITH_RC4_128_MD5", NullOrAnonymous),
    suite(0x0034, "TLS_DH_anon_WITH_AES_128_CBC_SHA", NullOrAnonymous),
    suite(0x00a6, "TLS_DH_anon_WITH_AES_128_GCM_SHA256", NullOrAnonymous),
    suite(0xc018, "TLS_ECDH_anon_WITH_AES_128_CBC_SHA", NullOrAnonymous),
    suite(0x0003, "TLS_RSA_EXPORT_WITH_RC4_40_MD5", Export),
    suite(0x0006, "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5", Export),
    suite(0x0008, "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", Export),
    suite(0x0014, "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA", Export),
    suite(0x0009, "TLS_RSA_WITH_DES_CBC_SHA", Export),
    suite(0x0015, "TLS_DHE_RSA_WITH_DES_CBC_SHA", Export),
    suite(0x0004, "TLS_RSA_WITH_RC4_128_MD5", Rc4),
    suite(0x0005, "TLS_RSA_WITH_RC4_128_SHA", Rc4),
    suite(0xc007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", Rc4),
    suite(0xc011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA", Rc4),
    suite(0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA", TripleDes),
    suite(0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA", TripleDes),
    suite(0xc008, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA", TripleDes),
    suite(0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", TripleDes),
    suite(0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA", NoForwardSecrecy),
    suite(0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA", NoForwardSecrecy),
    suite(0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256", NoForwardSecrecy),
    suite(0x003d, "TLS_RSA_WITH_AES_256_CBC_SHA256", NoForwardSecrecy),
    suite(0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256", NoForwardSecrecy),
    suite(0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384", NoForwardSecrecy),
    suite(0x0041, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA", NoForwardSecrecy),
    suite(0x0084, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA", NoForwardSecrecy),
    suite(0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", Cbc),
    suite(0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", Cbc),
    suite(0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", Cbc),
    suite(0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", Cbc),
    suite(0xc023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", Cbc),
    suite(0xc024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", Cbc),
    suite(0xc027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", Cbc),
    suite(0xc028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", Cbc),
    suite(0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", Cbc),
    suite(0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", Cbc),
    suite(0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", Cbc),
    suite(0x006b, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256", Cbc),
];

/// Forward-secret AEAD suites of TLS 1.2: what a server should choose.
pub const STRONG_TLS12: &[u16] = &[0xc02b, 0xc02c, 0xc02f, 0xc030, 0xcca8, 0xcca9, 0x009e, 0x009f, 0xccaa];

/// TLS 1.3's suites (all AEAD, all forward secret).
pub const TLS13: &[u16] = &[0x1301, 0x1302, 0x1303];

/// Every suite an old-protocol probe offers, so that the version alone
/// decides.
pub fn everything() -> Vec<u16> {
    WEAK.iter().map(|s| s.id).chain(STRONG_TLS12.iter().copied()).collect()
}

pub fn name(id: u16) -> String {
    WEAK.iter()
        .find(|s| s.id == id)
        .map_or_else(|| format!("0x{id:04x}"), |s| s.name.to_owned())
}
