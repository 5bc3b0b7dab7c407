//! The hybrid post-quantum key exchange X25519MLKEM768 (draft-ietf-tls-ecdhe-mlkem, group
//! 0x11EC) built from ring's X25519 and RustCrypto's pure-Rust ML-KEM-768, and the rustls
//! provider every AWS connection uses: ring, with this group offered first.

use ml_kem::array::Array;
use ml_kem::{Decapsulate, DecapsulationKey768, KeyExport, Seed};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::crypto::ring::{default_provider, kx_group};
use rustls::crypto::{ActiveKeyExchange, CryptoProvider, SharedSecret, SupportedKxGroup};
use rustls::{Error, NamedGroup, PeerMisbehaved, ProtocolVersion};
use zeroize::Zeroize;

/// ML-KEM-768 encapsulation key: the first part of the client's key share.
pub const EK_LEN: usize = 1184;
/// ML-KEM-768 ciphertext: the first part of the server's key share.
pub const CT_LEN: usize = 1088;
/// An X25519 public key: the second part of either share.
pub const X25519_LEN: usize = 32;

/// The cipher suites the SDK's own rustls client restricts itself to, in its order: TLS 1.3
/// AES-GCM, and TLS 1.2 ECDHE with AES-GCM (and ChaCha20 for RSA). A custom provider skips the
/// SDK's restriction, so it is applied here: the offer is the one `CryptoMode::Ring` made.
const SUITES: &[rustls::CipherSuite] = &[
    rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
    rustls::CipherSuite::TLS13_AES_128_GCM_SHA256,
    rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// ring's provider with the key-exchange groups X25519MLKEM768, X25519, P-256, P-384 in that
/// order. rustls sends the hybrid key share first and the X25519 share beside it (one X25519 key
/// serves both, `hybrid_component`), so a classical server that knows X25519 answers without a
/// HelloRetryRequest; only a server that knows neither costs one.
pub fn provider() -> CryptoProvider {
    let base = default_provider();
    let cipher_suites = SUITES
        .iter()
        .filter_map(|want| base.cipher_suites.iter().find(|s| s.suite() == *want))
        .copied()
        .collect();
    CryptoProvider {
        cipher_suites,
        kx_groups: vec![
            X25519MLKEM768,
            kx_group::X25519,
            kx_group::SECP256R1,
            kx_group::SECP384R1,
        ],
        ..base
    }
}

/// The group rustls offers first.
pub static X25519MLKEM768: &dyn SupportedKxGroup = &Hybrid;

#[derive(Debug)]
struct Hybrid;

impl SupportedKxGroup for Hybrid {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let x25519 = kx_group::X25519.start()?;
        let mut seed = Seed::default();
        let filled = SystemRandom::new().fill(seed.as_mut_slice());
        let mlkem = filled.map(|()| DecapsulationKey768::from_seed(seed));
        seed.as_mut_slice().zeroize();
        let mlkem = mlkem.map_err(|_| rustls::crypto::GetRandomFailed)?;
        let mut share = Vec::with_capacity(EK_LEN + X25519_LEN);
        share.extend_from_slice(&mlkem.encapsulation_key().to_bytes());
        share.extend_from_slice(x25519.pub_key());
        Ok(Box::new(Active {
            mlkem,
            x25519,
            share,
        }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519MLKEM768
    }

    fn ffdhe_group(&self) -> Option<rustls::ffdhe_groups::FfdheGroup<'static>> {
        None
    }

    fn usable_for_version(&self, version: ProtocolVersion) -> bool {
        version == ProtocolVersion::TLSv1_3
    }
}

/// One handshake's keys. The ML-KEM decapsulation key wipes itself on drop (ml-kem's `zeroize`
/// feature); ring owns the X25519 private key. No `Debug`: nothing here is ever printed.
struct Active {
    mlkem: DecapsulationKey768,
    x25519: Box<dyn ActiveKeyExchange>,
    /// Encapsulation key || X25519 public key: public, sent in the ClientHello.
    share: Vec<u8>,
}

impl ActiveKeyExchange for Active {
    /// `peer` is the ML-KEM ciphertext || the server's X25519 public key; the secret is the
    /// ML-KEM shared secret || the X25519 shared secret. A share of any other length, or an
    /// X25519 key ring refuses, is an error, never a panic.
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, Error> {
        if peer.len() != CT_LEN + X25519_LEN {
            return Err(PeerMisbehaved::InvalidKeyShare.into());
        }
        let (ct, x25519_peer) = peer.split_at(CT_LEN);
        let ct = Array::try_from(ct).map_err(|_| PeerMisbehaved::InvalidKeyShare)?;
        let classical = self.x25519.complete(x25519_peer)?;
        let mut kem = self.mlkem.decapsulate(&ct);
        let mut secret = Vec::with_capacity(kem.len() + classical.secret_bytes().len());
        secret.extend_from_slice(&kem);
        secret.extend_from_slice(classical.secret_bytes());
        kem.as_mut_slice().zeroize();
        Ok(SharedSecret::from(secret))
    }

    fn hybrid_component(&self) -> Option<(NamedGroup, &[u8])> {
        Some((NamedGroup::X25519, self.x25519.pub_key()))
    }

    /// The server chose plain X25519: the ML-KEM key is dropped (and wiped) unused.
    fn complete_hybrid_component(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, Error> {
        self.x25519.complete(peer)
    }

    fn pub_key(&self) -> &[u8] {
        &self.share
    }

    fn ffdhe_group(&self) -> Option<rustls::ffdhe_groups::FfdheGroup<'static>> {
        None
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519MLKEM768
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ml_kem::EncapsulationKey768;

    /// Plays the server side with ml-kem's encapsulation and ring's X25519: the share it answers
    /// and the secret it derives.
    fn serve(client_share: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let ek = Array::try_from(&client_share[..EK_LEN]).unwrap();
        let ek = EncapsulationKey768::new(&ek).unwrap();
        let mut m = [0u8; 32];
        SystemRandom::new().fill(&mut m).unwrap();
        let (ct, kem) = ek.encapsulate_deterministic(&Array::from(m));
        let x = kx_group::X25519.start().unwrap();
        let mut share = ct.to_vec();
        share.extend_from_slice(x.pub_key());
        let classical = x.complete(&client_share[EK_LEN..]).unwrap();
        let mut secret = kem.to_vec();
        secret.extend_from_slice(classical.secret_bytes());
        (share, secret)
    }

    #[test]
    fn shares_have_the_draft_layout_and_both_sides_agree() {
        let kx = X25519MLKEM768.start().unwrap();
        assert_eq!(kx.group(), NamedGroup::X25519MLKEM768);
        assert_eq!(kx.pub_key().len(), EK_LEN + X25519_LEN);
        let (group, classical) = kx.hybrid_component().unwrap();
        assert_eq!(group, NamedGroup::X25519);
        assert_eq!(classical, &kx.pub_key()[EK_LEN..], "X25519 key comes last");
        let (share, want) = serve(kx.pub_key());
        assert_eq!(share.len(), CT_LEN + X25519_LEN);
        let got = kx.complete(&share).unwrap();
        assert_eq!(got.secret_bytes().len(), 64);
        assert!(
            got.secret_bytes() == want,
            "client and server secrets differ"
        );
    }

    #[test]
    fn each_start_makes_fresh_keys() {
        let a = X25519MLKEM768.start().unwrap();
        let b = X25519MLKEM768.start().unwrap();
        assert_ne!(a.pub_key()[..EK_LEN], b.pub_key()[..EK_LEN]);
        assert_ne!(a.pub_key()[EK_LEN..], b.pub_key()[EK_LEN..]);
    }

    #[test]
    fn malformed_server_shares_are_errors() {
        let good_len = CT_LEN + X25519_LEN;
        for len in [0, 1, X25519_LEN, CT_LEN, good_len - 1, good_len + 1, 4096] {
            let kx = X25519MLKEM768.start().unwrap();
            let err = kx.complete(&vec![7u8; len]).err();
            assert_eq!(
                err,
                Some(Error::PeerMisbehaved(PeerMisbehaved::InvalidKeyShare)),
                "length {len}"
            );
        }
        // Right length, but the X25519 key is the all-zero point: ring refuses it.
        let kx = X25519MLKEM768.start().unwrap();
        assert!(kx.complete(&vec![0u8; good_len]).is_err());
    }

    #[test]
    fn a_classical_answer_uses_the_x25519_half() {
        let kx = X25519MLKEM768.start().unwrap();
        let client = kx.hybrid_component().unwrap().1.to_vec();
        let server = kx_group::X25519.start().unwrap();
        let server_pub = server.pub_key().to_vec();
        let want = server.complete(&client).unwrap();
        let got = kx.complete_hybrid_component(&server_pub).unwrap();
        assert!(got.secret_bytes() == want.secret_bytes());
    }

    #[test]
    fn hybrid_group_is_offered_first_and_classical_ones_kept() {
        let p = provider();
        let groups: Vec<_> = p.kx_groups.iter().map(|g| g.name()).collect();
        use rustls::NamedGroup as G;
        assert_eq!(
            groups,
            [G::X25519MLKEM768, G::X25519, G::secp256r1, G::secp384r1]
        );
        let suites: Vec<_> = p.cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(suites, SUITES, "every suite the SDK allows is available");
        assert!(!X25519MLKEM768.usable_for_version(ProtocolVersion::TLSv1_2));
    }
}
