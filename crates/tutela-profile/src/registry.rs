//! The set of known profiles, their short aliases, and composed selections of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::error::{ProfileError, ProfileErrors, SelectError};
use crate::model::{Profile, Status, Threshold};
use crate::validate::{hex, parse_profile};

/// The shipped profiles, embedded at compile time: `(path, text)`.
const BUILTIN: [(&str, &str); 9] = [
    (
        "profiles/cn-anthropomorphic-2026/profile.toml",
        include_str!("../../../profiles/cn-anthropomorphic-2026/profile.toml"),
    ),
    (
        "profiles/cn-anthropomorphic-draft-2025/profile.toml",
        include_str!("../../../profiles/cn-anthropomorphic-draft-2025/profile.toml"),
    ),
    (
        "profiles/cn-genai-2023/profile.toml",
        include_str!("../../../profiles/cn-genai-2023/profile.toml"),
    ),
    (
        "profiles/cn-labeling-2025/profile.toml",
        include_str!("../../../profiles/cn-labeling-2025/profile.toml"),
    ),
    (
        "profiles/us-ca-sb243/profile.toml",
        include_str!("../../../profiles/us-ca-sb243/profile.toml"),
    ),
    (
        "profiles/us-ny-gbl-art47/profile.toml",
        include_str!("../../../profiles/us-ny-gbl-art47/profile.toml"),
    ),
    (
        "profiles/eu-ai-act-art50/profile.toml",
        include_str!("../../../profiles/eu-ai-act-art50/profile.toml"),
    ),
    (
        "profiles/us-ut-hb452/profile.toml",
        include_str!("../../../profiles/us-ut-hb452/profile.toml"),
    ),
    (
        "profiles/tutela-baseline/profile.toml",
        include_str!("../../../profiles/tutela-baseline/profile.toml"),
    ),
];

/// All known profiles.
#[derive(Clone, Debug)]
pub struct Registry {
    profiles: Vec<Arc<Profile>>,
}

impl Registry {
    /// The profiles shipped in `profiles/`, embedded in the binary at compile time.
    pub fn builtin() -> Result<Registry, ProfileErrors> {
        Self::from_sources(Self::builtin_sources())
    }

    /// The texts of the shipped profiles, as `(path, text)`.
    pub fn builtin_sources() -> Vec<(String, String)> {
        BUILTIN
            .iter()
            .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
            .collect()
    }

    /// Parses profile files the caller has read, as `(path, text)`. Every error in every file
    /// is reported. A file named `.../<dir>/profile.toml` must declare `id = "<dir>"`.
    pub fn from_sources(sources: Vec<(String, String)>) -> Result<Registry, ProfileErrors> {
        let mut errors = Vec::new();
        let mut profiles: Vec<Arc<Profile>> = Vec::new();
        for (path, text) in &sources {
            match parse_profile(path, text) {
                Ok(p) => {
                    if let Some(dir) = dir_name(path)
                        && dir != p.id()
                    {
                        errors.push(ProfileError::new(
                            path,
                            Some(1),
                            "id".into(),
                            format!("`{}` must equal its directory name `{dir}`", p.id()),
                        ));
                    }
                    if profiles.iter().any(|q| q.id() == p.id()) {
                        errors.push(ProfileError::new(
                            path,
                            Some(1),
                            "id".into(),
                            format!("profile `{}` is defined twice", p.id()),
                        ));
                    }
                    profiles.push(Arc::new(p));
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            profiles.sort_by(|a, b| a.id().cmp(b.id()));
            Ok(Registry { profiles })
        } else {
            Err(ProfileErrors(errors))
        }
    }

    /// All profiles, sorted by id.
    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.iter().map(|p| &**p)
    }

    /// The profile with this id.
    pub fn get(&self, id: &str) -> Option<&Profile> {
        self.profiles().find(|p| p.id() == id)
    }

    /// Short aliases: each jurisdiction maps to its current, non-draft profiles.
    pub fn aliases(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in self.profiles() {
            if p.is_current() && p.status() != Status::Draft {
                out.entry(p.jurisdiction().to_owned())
                    .or_default()
                    .push(p.id().to_owned());
            }
        }
        out
    }

    /// Composes profiles named by id or alias (`cn`, `us-ca`, ...). Duplicates collapse.
    pub fn select<S: AsRef<str>>(&self, names: &[S]) -> Result<ProfileSet, SelectError> {
        let aliases = self.aliases();
        let mut chosen: Vec<Arc<Profile>> = Vec::new();
        for name in names {
            let name = name.as_ref();
            let ids: Vec<String> = match (self.get(name), aliases.get(name)) {
                (Some(p), _) => vec![p.id().to_owned()],
                (None, Some(ids)) => ids.clone(),
                (None, None) => {
                    let mut known: Vec<&str> = aliases.keys().map(String::as_str).collect();
                    known.extend(self.profiles().map(Profile::id));
                    return Err(SelectError {
                        name: name.to_owned(),
                        known: known.join(", "),
                    });
                }
            };
            for id in ids {
                if let Some(p) = self.profiles.iter().find(|p| p.id() == id)
                    && !chosen.iter().any(|c| c.id() == id)
                {
                    chosen.push(Arc::clone(p));
                }
            }
        }
        Ok(ProfileSet::new(chosen))
    }
}

fn dir_name(path: &str) -> Option<&str> {
    let mut parts = path.rsplit(['/', '\\']);
    match (parts.next(), parts.next()) {
        (Some("profile.toml"), Some(dir)) => Some(dir),
        _ => None,
    }
}

/// Profiles composed for one user or deployment: what the duties engine evaluates.
#[derive(Clone, Debug)]
pub struct ProfileSet {
    profiles: Vec<Arc<Profile>>,
    snapshot_hash: String,
}

impl ProfileSet {
    fn new(mut profiles: Vec<Arc<Profile>>) -> Self {
        profiles.sort_by(|a, b| a.id().cmp(b.id()));
        let mut h = Sha256::new();
        for p in &profiles {
            h.update(p.id().as_bytes());
            h.update([0]);
            h.update(p.text_hash().as_bytes());
            h.update([0]);
        }
        Self {
            profiles,
            snapshot_hash: hex(&h.finalize()),
        }
    }

    /// The composed profiles, sorted by id.
    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.iter().map(|p| &**p)
    }

    /// Their ids.
    pub fn ids(&self) -> Vec<&str> {
        self.profiles().map(Profile::id).collect()
    }

    /// Hex SHA-256 over the ids and texts of the composed profiles; audit records carry it so
    /// any past decision can be replayed against exactly these rules.
    pub fn snapshot_hash(&self) -> &str {
        &self.snapshot_hash
    }

    /// This set plus the profiles of `other`.
    pub fn union(&self, other: &ProfileSet) -> ProfileSet {
        let mut all = self.profiles.clone();
        for p in &other.profiles {
            if !all.iter().any(|q| q.id() == p.id()) {
                all.push(Arc::clone(p));
            }
        }
        ProfileSet::new(all)
    }

    /// Every usage threshold, with the profile and obligation that set it.
    pub fn thresholds(&self) -> Vec<(&Profile, &crate::model::Obligation, &Threshold)> {
        self.profiles()
            .flat_map(|p| {
                p.obligations()
                    .iter()
                    .filter_map(move |o| o.threshold.as_ref().map(|t| (p, o, t)))
            })
            .collect()
    }
}
