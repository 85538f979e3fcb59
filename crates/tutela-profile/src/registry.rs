//! The set of known profiles, their short aliases, and composed selections of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::error::{ProfileError, ProfileErrors, SelectError};
use crate::model::{Profile, Status, Threshold};
use crate::validate::{hex, parse_profile};

/// The shipped profiles, embedded at compile time: `(path, text)`.
const BUILTIN: [(&str, &str); 19] = [
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
    (
        "profiles/us-wa-hb2225/profile.toml",
        include_str!("../../../profiles/us-wa-hb2225/profile.toml"),
    ),
    (
        "profiles/us-ct-pa26-15/profile.toml",
        include_str!("../../../profiles/us-ct-pa26-15/profile.toml"),
    ),
    (
        "profiles/us-or-sb1546/profile.toml",
        include_str!("../../../profiles/us-or-sb1546/profile.toml"),
    ),
    (
        "profiles/us-caisa-template/profile.toml",
        include_str!("../../../profiles/us-caisa-template/profile.toml"),
    ),
    (
        "profiles/us-ne-lb525/profile.toml",
        include_str!("../../../profiles/us-ne-lb525/profile.toml"),
    ),
    (
        "profiles/us-id-s1297/profile.toml",
        include_str!("../../../profiles/us-id-s1297/profile.toml"),
    ),
    (
        "profiles/us-ia-sf2417/profile.toml",
        include_str!("../../../profiles/us-ia-sf2417/profile.toml"),
    ),
    (
        "profiles/us-ga-sb540/profile.toml",
        include_str!("../../../profiles/us-ga-sb540/profile.toml"),
    ),
    (
        "profiles/au-esafety-phase2/profile.toml",
        include_str!("../../../profiles/au-esafety-phase2/profile.toml"),
    ),
    (
        "profiles/kr-ai-basic-act/profile.toml",
        include_str!("../../../profiles/kr-ai-basic-act/profile.toml"),
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
        let profiles = inherit(profiles, &sources, &mut errors);
        if errors.is_empty() {
            let mut profiles = profiles;
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

    /// Short aliases: each jurisdiction maps to its current profiles (never drafts or
    /// templates).
    pub fn aliases(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in self.profiles() {
            if p.is_current() && !matches!(p.status(), Status::Draft | Status::Template) {
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
            let selectable = self.get(name).filter(|p| p.status() != Status::Template);
            let ids: Vec<String> = match (selectable, aliases.get(name)) {
                (Some(p), _) => vec![p.id().to_owned()],
                (None, Some(ids)) => ids.clone(),
                (None, None) => {
                    let mut known: Vec<&str> = aliases.keys().map(String::as_str).collect();
                    known.extend(
                        self.profiles()
                            .filter(|p| p.status() != Status::Template)
                            .map(Profile::id),
                    );
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

/// Resolves `extends`: a thin profile takes its template's obligations (less those it
/// `omit`s; an obligation of its own with the same id replaces the template's), template
/// obligations without their own date take the thin profile's, and the thin profile's text hash
/// covers the template's text too, so a snapshot hash changes when the template does.
fn inherit(
    profiles: Vec<Arc<Profile>>,
    sources: &[(String, String)],
    errors: &mut Vec<ProfileError>,
) -> Vec<Arc<Profile>> {
    let file_of = |id: &str| {
        sources
            .iter()
            .find(|(p, _)| dir_name(p) == Some(id))
            .map_or_else(|| id.to_owned(), |(p, _)| p.clone())
    };
    let mut out = Vec::with_capacity(profiles.len());
    for p in &profiles {
        let Some(base_id) = p.extends() else {
            out.push(Arc::clone(p));
            continue;
        };
        let file = file_of(p.id());
        let Some(base) = profiles
            .iter()
            .find(|q| q.id() == base_id && q.status() == Status::Template)
        else {
            errors.push(ProfileError::new(
                &file,
                None,
                "extends".into(),
                format!("`{base_id}` is not a template profile (`status = \"template\"`)"),
            ));
            continue;
        };
        for name in &p.omit {
            if !base.obligations().iter().any(|o| &o.id == name) {
                errors.push(ProfileError::new(
                    &file,
                    None,
                    "omit".into(),
                    format!("template `{base_id}` has no obligation `{name}`"),
                ));
            }
        }
        let mut obligations: Vec<_> = base
            .obligations()
            .iter()
            .filter(|o| !p.omit.contains(&o.id))
            .map(|o| {
                let mut o = o.clone();
                if o.effective_inherited {
                    o.effective = p.effective();
                }
                o
            })
            .collect();
        for own in p.obligations() {
            match obligations.iter_mut().find(|o| o.id == own.id) {
                Some(slot) => *slot = own.clone(),
                None => obligations.push(own.clone()),
            }
        }
        let mut h = Sha256::new();
        h.update(p.text_hash().as_bytes());
        h.update([0]);
        h.update(base.text_hash().as_bytes());
        let mut thin = (**p).clone();
        thin.obligations = obligations;
        thin.text_hash = hex(&h.finalize());
        out.push(Arc::new(thin));
    }
    out
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
