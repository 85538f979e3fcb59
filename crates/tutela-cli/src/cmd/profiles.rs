//! `tutela profiles list | show ID|ALIAS | explain ID|ALIAS | check [PATH] | check-deployment FILE`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tutela_profile::{Profile, Registry, Status, Verification};

use crate::Outcome;

/// Arguments of `tutela profiles`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Read profiles from this directory instead of the copies built into the binary.
    #[arg(long, global = true, value_name = "DIR")]
    profiles: Option<PathBuf>,
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// One line per profile, then the jurisdiction aliases.
    List,
    /// The profile file as written (for an alias, each of its profiles' files).
    Show {
        /// Profile id or jurisdiction alias (`cn`, `us-ca`, ...).
        id: String,
    },
    /// What the profile requires and how tutela meets each duty, for people.
    Explain {
        /// Profile id or jurisdiction alias (`us-wa`, `cn`, ...); an alias explains each of
        /// its profiles.
        id: String,
        /// Explain as for a deployment whose interface shows a persistent AI disclosure
        /// (`[engine] persistent_ai_disclosure`): duties it meets say so instead of their rules.
        #[arg(long)]
        persistent_ai_disclosure: bool,
    },
    /// What the selected profiles forbid or require of the product, against the operator's
    /// declaration (a TOML file: `profiles`, `serves_minors`, `features`, `[figures]`); exit 1
    /// when something is forbidden or missing.
    CheckDeployment {
        /// The declaration file.
        file: PathBuf,
    },
    /// Validate profile files; exit 1 listing every error.
    Check {
        /// A profile directory tree or one `profile.toml` (default: `profiles`). A path that
        /// does not exist here names the built-in copies by their repository path
        /// (`profiles`, `profiles/cn-genai-2023`), so `tutela profiles check profiles` checks
        /// the built-in profiles from any other directory.
        path: Option<PathBuf>,
    },
}

/// Runs `tutela profiles`.
pub fn run(args: Args) -> Result<Outcome> {
    let mut out = std::io::stdout().lock();
    match args.command {
        Sub::Check { path } => {
            let path = path
                .or(args.profiles)
                .unwrap_or_else(|| PathBuf::from("profiles"));
            let (sources, from) = check_sources(&path)?;
            check(sources, &from, &mut out)
        }
        Sub::List => {
            let reg = load(args.profiles.as_deref())?;
            list(&reg, &mut out)?;
            Ok(Outcome::Clean)
        }
        Sub::Show { id } => {
            let sources = match args.profiles.as_deref() {
                Some(dir) => read_sources(dir)?,
                None => Registry::builtin_sources(),
            };
            let reg =
                Registry::from_sources(sources.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
            let ids = resolve(&reg, &id)?;
            for (i, pid) in ids.iter().enumerate() {
                let Some((path, text)) = sources.iter().find(|(p, _)| {
                    Path::new(p)
                        .parent()
                        .and_then(Path::file_name)
                        .is_some_and(|d| d == pid.as_str())
                }) else {
                    bail!("no profile file for `{pid}`");
                };
                if ids.len() > 1 {
                    if i > 0 {
                        writeln!(out)?;
                    }
                    writeln!(out, "# ==> {path} <==")?;
                }
                out.write_all(text.as_bytes())?;
            }
            Ok(Outcome::Clean)
        }
        Sub::Explain {
            id,
            persistent_ai_disclosure,
        } => {
            let reg = load(args.profiles.as_deref())?;
            let ids = resolve(&reg, &id)?;
            for (i, pid) in ids.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                if let Some(p) = reg.get(pid) {
                    explain(p, persistent_ai_disclosure, &mut out)?;
                }
            }
            Ok(Outcome::Clean)
        }
        Sub::CheckDeployment { file } => {
            let reg = load(args.profiles.as_deref())?;
            check_deployment(&reg, &file, &mut out)
        }
    }
}

/// The profile ids a name given on the command line stands for: a profile id, or a
/// jurisdiction alias (`cn`, `us-ca`, ...) standing for its current profiles.
fn resolve(reg: &Registry, name: &str) -> Result<Vec<String>> {
    Ok(match (reg.get(name), reg.aliases().get(name)) {
        (Some(p), _) => vec![p.id().to_owned()],
        (None, Some(ids)) => ids.clone(),
        (None, None) => bail!(
            "no profile or jurisdiction `{name}`; `tutela profiles list` shows the known ones"
        ),
    })
}

/// What `profiles check PATH` checks: the files at `PATH` (relative to the working
/// directory) when it exists; else the built-in copies whose repository path is `PATH` or
/// lies under it (`profiles`, `profiles/cn-genai-2023`, ...), so `tutela profiles check
/// profiles` works from any directory. Returns the sources and how to name them.
fn check_sources(path: &Path) -> Result<(Vec<(String, String)>, String)> {
    if path.exists() {
        return Ok((read_sources(path)?, format!("under `{}`", path.display())));
    }
    let want = path.components().collect::<Vec<_>>();
    let builtin: Vec<(String, String)> = Registry::builtin_sources()
        .into_iter()
        .filter(|(p, _)| {
            Path::new(p)
                .components()
                .collect::<Vec<_>>()
                .starts_with(&want)
        })
        .collect();
    if builtin.is_empty() || want.is_empty() {
        bail!(
            "no `{}` here, nor among the built-in profiles (`profiles/<id>`); give the path \
             of a profile directory tree or of one `profile.toml`",
            path.display()
        );
    }
    Ok((
        builtin,
        format!(
            "built into the binary (no `{}` in this directory)",
            path.display()
        ),
    ))
}

pub(crate) fn load(dir: Option<&Path>) -> Result<Registry> {
    let reg = match dir {
        Some(dir) => Registry::from_sources(read_sources(dir)?),
        None => Registry::builtin(),
    };
    reg.map_err(|e| anyhow::anyhow!("{e}"))
}

/// Every `profile.toml` under `path` (or `path` itself if it is a file), as `(path, text)`.
fn read_sources(path: &Path) -> Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    if path.is_file() {
        files.push(path.to_path_buf());
    } else {
        let entries = std::fs::read_dir(path)
            .with_context(|| format!("cannot read profile directory `{}`", path.display()))?;
        for entry in entries {
            let file = entry?.path().join("profile.toml");
            if file.is_file() {
                files.push(file);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f)
                .with_context(|| format!("cannot read `{}`", f.display()))?;
            Ok((f.display().to_string(), text))
        })
        .collect()
}

fn check(sources: Vec<(String, String)>, from: &str, out: &mut impl Write) -> Result<Outcome> {
    if sources.is_empty() {
        bail!("no `profile.toml` found {from}");
    }
    let n = sources.len();
    match Registry::from_sources(sources) {
        Ok(reg) => {
            let obligations: usize = reg.profiles().map(|p| p.obligations().len()).sum();
            writeln!(out, "ok: {n} profiles {from}, {obligations} obligations")?;
            Ok(Outcome::Clean)
        }
        Err(errors) => {
            write!(out, "{errors}")?;
            Ok(Outcome::Findings)
        }
    }
}

fn list(reg: &Registry, out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "{:<32} {:<10} {:<9} {:<11} {:>5}  TITLE",
        "ID", "ALIAS", "STATUS", "EFFECTIVE", "DUTIES"
    )?;
    for p in reg.profiles() {
        let alias = if p.is_current() && !matches!(p.status(), Status::Draft | Status::Template) {
            p.jurisdiction()
        } else {
            "-"
        };
        writeln!(
            out,
            "{:<32} {:<10} {:<9} {:<11} {:>5}  {}",
            p.id(),
            alias,
            status(p.status()),
            p.effective().to_string(),
            p.obligations().len(),
            p.title()
        )?;
    }
    writeln!(out)?;
    writeln!(out, "Aliases:")?;
    for (alias, ids) in reg.aliases() {
        writeln!(out, "  {alias:<9} = {}", ids.join(", "))?;
    }
    Ok(())
}

fn status(s: Status) -> &'static str {
    match s {
        Status::InForce => "in force",
        Status::Enacted => "enacted",
        Status::Draft => "draft",
        Status::Policy => "policy",
        Status::Template => "template",
    }
}

fn verification(v: Verification) -> &'static str {
    match v {
        Verification::Verified => "verified against the official text",
        Verification::Secondary => "from a secondary source",
        Verification::Recollection => "recalled, not re-verified",
        Verification::Reported => "reported or uncertain: sources conflict or were not found",
        Verification::Draft => "draft text only",
        Verification::Design => "tutela's design choice",
    }
}

fn explain(p: &Profile, persistent_ai_disclosure: bool, out: &mut impl Write) -> Result<()> {
    writeln!(out, "{}", p.title())?;
    writeln!(out, "{}", "=".repeat(p.title().chars().count()))?;
    writeln!(out, "Law:        {}", p.law())?;
    writeln!(
        out,
        "Status:     {} since {}",
        status(p.status()),
        p.effective()
    )?;
    writeln!(out, "Checked:    {}", verification(p.verification()))?;
    if let Some(s) = p.source() {
        writeln!(out, "Source:     {s}")?;
    }
    if let Some(s) = p.scope() {
        writeln!(out, "Scope:      {s}")?;
    }
    if let Some(s) = p.penalties() {
        writeln!(out, "Penalties:  {s}")?;
    }
    if let Some(s) = p.notes() {
        writeln!(out, "Notes:      {s}")?;
    }
    if let Some(t) = p.extends() {
        writeln!(
            out,
            "Template:   {t} (its duties, as this law replaces or omits them)"
        )?;
    }
    for o in p.obligations() {
        writeln!(out)?;
        writeln!(out, "{} — {}  [{}]", o.article, o.title, o.id)?;
        let covers = match o.covers {
            tutela_profile::Covers::All => "all users",
            tutela_profile::Covers::KnownMinors => "users known to be minors",
            tutela_profile::Covers::Minors => {
                "known minors and users there is reason to believe are minors (suspected)"
            }
            tutela_profile::Covers::Elderly => "elderly users",
        };
        let met: Vec<String> = o
            .met_by
            .iter()
            .map(|m| format!("{m:?}").to_lowercase())
            .collect();
        writeln!(out, "  Covers:    {covers}; in effect from {}", o.effective)?;
        writeln!(out, "  Requires:  {}", o.summary)?;
        writeln!(out, "  tutela:    {}", o.how)?;
        writeln!(out, "  Met by:    {}", met.join(", "))?;
        let met_otherwise = persistent_ai_disclosure
            && o.alternatives
                .contains(&tutela_profile::Alternative::PersistentAiDisclosure);
        for a in &o.alternatives {
            writeln!(
                out,
                "  Or:        {} (declared by the deployment instead of the rules)",
                tutela_profile::stable_name(a).replace('_', " ")
            )?;
        }
        if met_otherwise {
            writeln!(
                out,
                "  Met:       by the deployment's persistent AI disclosure; no notice clock runs"
            )?;
        } else {
            for rule in &o.rules {
                writeln!(out, "  Rule:      {rule}")?;
            }
        }
        if let Some(d) = &o.deployment {
            let names = |fs: &[tutela_profile::Feature]| {
                fs.iter()
                    .map(tutela_profile::stable_name)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if !d.forbids.is_empty() {
                writeln!(out, "  Product:   must not have {}", names(&d.forbids))?;
            }
            if !d.requires.is_empty() {
                writeln!(out, "  Product:   must have {}", names(&d.requires))?;
            }
            if !d.when_any_at_least.is_empty() {
                let when: Vec<String> = d
                    .when_any_at_least
                    .iter()
                    .map(|(f, n)| {
                        format!(
                            "{} ≥ {}",
                            tutela_profile::stable_name(f),
                            tutela_report::render::thousands(*n)
                        )
                    })
                    .collect();
                writeln!(out, "  When:      any of {}", when.join(", "))?;
            }
        }
        if let Some(t) = &o.threshold {
            let mut parts = Vec::new();
            if let Some(n) = t.registered_users {
                parts.push(format!(
                    "{} registered users",
                    tutela_report::render::thousands(n)
                ));
            }
            if let Some(n) = t.monthly_active_users {
                parts.push(format!(
                    "{} monthly active users",
                    tutela_report::render::thousands(n)
                ));
            }
            writeln!(
                out,
                "  Threshold: {} → {} (warning at {:.0} %)",
                parts.join(" or "),
                t.opens.replace('_', " "),
                t.warn_ratio * 100.0
            )?;
        }
        writeln!(out, "  Checked:   {}", verification(o.verification))?;
        if !o.unverified.is_empty() {
            writeln!(out, "  UNVERIFIED: {}", o.unverified.join(", "))?;
        }
    }
    Ok(())
}

fn check_deployment(reg: &Registry, file: &Path, out: &mut impl Write) -> Result<Outcome> {
    use tutela_profile::{Verdict, stable_name};
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read `{}`", file.display()))?;
    let declaration = tutela_profile::Declaration::parse(&text)
        .map_err(|e| anyhow::anyhow!("`{}`: {e}", file.display()))?;
    if declaration.profiles.is_empty() {
        bail!(
            "`{}`: `profiles` names no profile or jurisdiction",
            file.display()
        );
    }
    let set = reg
        .select(&declaration.profiles)
        .map_err(|e| anyhow::anyhow!("`{}`: {e}", file.display()))?;
    let checked = tutela_profile::check_deployment(&set, &declaration);
    let names =
        |fs: &[tutela_profile::Feature]| fs.iter().map(stable_name).collect::<Vec<_>>().join(", ");
    let mut failed = 0usize;
    writeln!(out, "Profiles: {}", set.ids().join(", "))?;
    for c in &checked {
        let (mark, text) = match &c.verdict {
            Verdict::Met => ("ok  ", "met by the declared product".to_owned()),
            Verdict::MetBy(a) => (
                "ok  ",
                format!("met by the declared {}", stable_name(a).replace('_', " ")),
            ),
            Verdict::Forbidden(fs) => ("FAIL", format!("forbidden, but declared: {}", names(fs))),
            Verdict::Missing(fs) => ("FAIL", format!("required, not declared: {}", names(fs))),
            Verdict::NotApplicable(why) => ("n/a ", why.clone()),
            Verdict::Undecided(what) => ("??  ", format!("cannot tell: {what}")),
        };
        if c.verdict.fails() {
            failed += 1;
        }
        writeln!(
            out,
            "{mark} {}/{} ({}, from {}): {text}",
            c.profile.id(),
            c.obligation.id,
            c.obligation.article,
            c.obligation.effective
        )?;
    }
    writeln!(
        out,
        "{} deployment duties checked, {failed} to act on",
        checked.len()
    )?;
    Ok(if failed > 0 {
        Outcome::Findings
    } else {
        Outcome::Clean
    })
}
