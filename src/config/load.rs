//! Reading: the environment file, the workspace directory (in parallel), the source digest, and
//! turning collected problems into located [`ConfigErrors`].

use super::names::{EnvVarName, NonEmpty};
use super::raw::{AuthMethod, RawAuth, RawAws, RawEnv, RawOpenbao, RawWorkspace};
use super::validate::{self, Decl};
use super::problems::{Problems, Source, Sources};
use super::{check_pem, Auth, AwsConnection, ConfigError, ConfigErrors, Connection, Environment, PathSeg, Pem, Tls, TokenSource};
use sha2::{Digest, Sha256};
use std::path::{Component, Path, PathBuf};

/// See [`super::load`].
pub(crate) fn load(path: &Path) -> Result<Environment, ConfigErrors> {
    let text =
        read_text(path).map_err(|e| ConfigError::whole_file(path, format!("cannot read environment file: {e}")))?;
    load_text(path, text)
}

/// See [`super::load_str`]: everything [`load`] does after reading the environment file.
pub(crate) fn load_text(path: &Path, text: String) -> Result<Environment, ConfigErrors> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let raw: RawEnv = parse_yaml(path, &text)?;
    let rel = PathBuf::from(path.file_name().unwrap_or(path.as_os_str()));
    let mut sources = Sources::new(Source { path: path.to_path_buf(), rel, text });
    let mut problems = Problems::default();

    let openbao = connection(&raw.openbao, &dir, &mut problems);
    let aws = raw.aws.as_ref().and_then(|a| aws_connection(a, &dir, &mut problems));
    let dir_workspaces = match &raw.workspaces_dir {
        Some(ws_dir) => read_workspace_dir(&dir, &ws_dir.0, &mut sources, &mut problems),
        None => Vec::new(),
    };
    let mut decls: Vec<Decl<'_>> = raw
        .workspaces
        .iter()
        .enumerate()
        .map(|(i, ws)| Decl { file: 0, base: vec![PathSeg::key("workspaces"), PathSeg::Index(i)], raw: ws })
        .collect();
    decls.extend(dir_workspaces.iter().map(|(file, ws)| Decl { file: *file, base: Vec::new(), raw: ws }));
    let workspaces = validate::workspaces(&raw.classes.0, &decls, &sources, &mut problems);
    let infra = super::network::validate(path, raw.network.as_ref(), &raw.instances, raw.rds.as_ref(), &mut problems);
    let artifacts = raw.artifacts.as_ref().map(|a| super::artifacts::resolve(a, path, &sources, &mut problems));
    let alarms = raw.alarms.as_ref().and_then(|a| super::alarms::validate(a, aws.is_some(), &mut problems));
    let dr = raw.dr.as_ref().map(|d| super::dr::validate(d, aws.is_some(), &mut problems));
    let policy_lint = raw.policy_lint.as_ref().map(|p| super::policy_lint::validate(p, &workspaces, &mut problems));
    let env_name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let kms_iam = super::infra::validate(
        &env_name,
        raw.kms.as_ref(),
        raw.iam.as_ref(),
        raw.openbao_cluster.as_ref(),
        artifacts.as_ref(),
        raw.aws.is_some(),
        &mut problems,
    );

    // A kms_key that names a key must name one of kms:.
    let declared_key = |kms_key: &str| !super::is_declared_key(kms_key) || kms_iam.kms_keys.contains_key(kms_key);
    let unknown_key = |k: &str| format!("kms_key {k:?} names no key in kms: (declared: {})", kms_iam.kms_keys.keys().cloned().collect::<Vec<_>>().join(", "));
    for g in infra.instances.iter().filter(|g| !declared_key(&g.kms_key_id)) {
        problems.at(0, vec![PathSeg::key("instances"), PathSeg::key(&g.name), PathSeg::key("kms_key")], unknown_key(&g.kms_key_id));
    }
    for g in &infra.instances {
        let Some(role) = &g.instance_profile else { continue };
        if !kms_iam.iam_roles.get(role).is_some_and(|r| r.instance_profile) {
            let with: Vec<&str> = kms_iam.iam_roles.iter().filter(|(_, r)| r.instance_profile).map(|(n, _)| n.as_str()).collect();
            problems.at(
                0,
                vec![PathSeg::key("instances"), PathSeg::key(&g.name), PathSeg::key("instance_profile")],
                format!("instance_profile {role:?} names no iam: role with instance_profile: true (those with one: {})", with.join(", ")),
            );
        }
    }
    if let Some(rds) = infra.rds.as_ref().filter(|r| !declared_key(&r.kms_key_id)) {
        problems.at(0, vec![PathSeg::key("rds"), PathSeg::key("kms_key")], unknown_key(&rds.kms_key_id));
    }

    // An alarm dimension `@instance.<group>.<n>` names a declared instance (its id is known
    // only once it runs).
    if let Some(cfg) = &alarms {
        let declared: std::collections::BTreeSet<String> = infra
            .instances
            .iter()
            .flat_map(|g| (0..g.count).map(move |i| format!("instance.{}.{i}", g.name)))
            .collect();
        for (i, a) in cfg.alarms.iter().enumerate() {
            for (dim, value) in &a.dimensions {
                let Some(target) = value.strip_prefix('@') else { continue };
                if !declared.contains(target) {
                    let at = vec![PathSeg::key("alarms"), PathSeg::key("alarms"), PathSeg::Index(i), PathSeg::key("dimensions"), PathSeg::key(dim)];
                    let known: Vec<&str> = declared.iter().map(String::as_str).collect();
                    problems.at(0, at, format!("{dim}: {value:?} names no declared instance (declared: {})", known.join(", ")));
                }
            }
        }
    }

    match openbao {
        Some(openbao) if problems.is_empty() => Ok(Environment {
            name: path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            file: path.to_path_buf(),
            dir,
            openbao,
            aws,
            workspaces,
            infra,
            artifacts,
            kms_iam,
            alarms,
            dr,
            policy_lint,
            source_digest: digest(&sources),
            sources: sorted_paths(&sources),
        }),
        _ => Err(problems.resolve(&sources)),
    }
}

/// The `aws:` section: exactly one of `dev_stack` or `region` (+ optional `endpoint`).
fn aws_connection(raw: &RawAws, dir: &Path, problems: &mut Problems) -> Option<AwsConnection> {
    let at = |key: &str| vec![PathSeg::key("aws"), PathSeg::key(key)];
    match (&raw.dev_stack, &raw.region) {
        (Some(dev), None) => {
            if raw.endpoint.is_some() {
                problems.at(0, at("endpoint"), "endpoint is only used with region; dev_stack uses the stack's moto");
            }
            Some(AwsConnection::DevStack { dir: absolute(dir, &dev.0) })
        }
        (None, Some(region)) => Some(AwsConnection::Account {
            region: region.0.clone(),
            endpoint: raw.endpoint.as_ref().map(|e| e.0.clone()),
        }),
        (Some(_), Some(_)) => {
            problems.at(0, at("region"), "set either dev_stack or region, not both");
            None
        }
        (None, None) => {
            problems.at(0, vec![PathSeg::key("aws")], "aws needs either dev_stack (the local dev stack's directory) or region");
            None
        }
    }
}

/// The `openbao:` section: `dev_stack`, or a server: `address` (else `BAO_ADDR`), `namespace`
/// (else `BAO_NAMESPACE`), how ctl logs in (`auth:`, or the older `token_env`/`token_file`;
/// else `BAO_TOKEN`) and TLS settings.
fn connection(raw: &RawOpenbao, dir: &Path, problems: &mut Problems) -> Option<Connection> {
    let at = |key: &str| vec![PathSeg::key("openbao"), PathSeg::key(key)];
    if let Some(dev) = &raw.dev_stack {
        let server_keys = [
            ("address", raw.address.is_some()),
            ("token_env", raw.token_env.is_some()),
            ("token_file", raw.token_file.is_some()),
            ("auth", raw.auth.is_some()),
            ("namespace", raw.namespace.is_some()),
        ];
        for (key, set) in server_keys {
            if set {
                problems.at(0, at(key), format!("{key} is only used with a server; dev_stack manages its own address and token"));
            }
        }
        for (key, set) in tls_keys(raw) {
            if set {
                problems.at(0, at(key), format!("{key} is only used with an https:// address; the dev stack speaks plain HTTP"));
            }
        }
        return Some(Connection::DevStack { dir: absolute(dir, &dev.0) });
    }
    let legacy = match (&raw.token_env, &raw.token_file) {
        (Some(var), None) => Some(TokenSource::Env(var.0.clone())),
        (None, Some(file)) => Some(TokenSource::File(absolute(dir, &file.0))),
        (Some(_), Some(_)) => {
            problems.at(0, at("token_file"), "set exactly one of token_env or token_file, not both");
            return None;
        }
        (None, None) => None,
    };
    let auth = match (&raw.auth, legacy) {
        (Some(_), Some(_)) => {
            let key = if raw.token_env.is_some() { "token_env" } else { "token_file" };
            problems.at(0, at(key), format!("{key} and auth both say how to log in; keep one (auth: {{ method: token, {key}: … }})"));
            return None;
        }
        (Some(a), None) => Some(auth(a, dir, problems)?),
        (None, Some(token)) => Some(Auth::Token(token)),
        (None, None) => None,
    };
    let address = raw.address.as_ref().map(|a| a.0.clone());
    let tls = tls(raw, address.as_deref(), dir, problems)?;
    let namespace = raw.namespace.as_ref().map(|n| n.0.trim_matches('/').to_string());
    Some(Connection::Server { address, namespace, auth, tls })
}

/// `openbao.auth`: the fields its method needs, and no others.
fn auth(raw: &RawAuth, dir: &Path, problems: &mut Problems) -> Option<Auth> {
    let at = |key: &str| vec![PathSeg::key("openbao"), PathSeg::key("auth"), PathSeg::key(key)];
    let method = match raw.method {
        AuthMethod::Token => "token",
        AuthMethod::Jwt => "jwt",
        AuthMethod::Approle => "approle",
    };
    let allowed: &[&str] = match raw.method {
        AuthMethod::Token => &["token_env", "token_file"],
        AuthMethod::Jwt => &["mount", "role", "jwt_env", "jwt_file"],
        AuthMethod::Approle => &["mount", "role_id_file", "secret_id_file"],
    };
    let set = [
        ("mount", raw.mount.is_some()),
        ("role", raw.role.is_some()),
        ("token_env", raw.token_env.is_some()),
        ("token_file", raw.token_file.is_some()),
        ("jwt_env", raw.jwt_env.is_some()),
        ("jwt_file", raw.jwt_file.is_some()),
        ("role_id_file", raw.role_id_file.is_some()),
        ("secret_id_file", raw.secret_id_file.is_some()),
    ];
    let before = problems.len();
    for (key, _) in set.iter().filter(|(k, s)| *s && !allowed.contains(k)) {
        problems.at(0, at(key), format!("{key} is not used by method {method} (it takes {})", allowed.join(", ")));
    }
    let source = |env: &Option<EnvVarName>, file: &Option<NonEmpty>, what: &str, problems: &mut Problems| match (env, file) {
        (Some(var), None) => Some(TokenSource::Env(var.0.clone())),
        (None, Some(f)) => Some(TokenSource::File(absolute(dir, &f.0))),
        (Some(_), Some(_)) => {
            problems.at(0, at(&format!("{what}_file")), format!("set exactly one of {what}_env or {what}_file, not both"));
            None
        }
        (None, None) => {
            problems.at(0, vec![PathSeg::key("openbao"), PathSeg::key("auth")], format!(
                "method {method} needs {what}_env (an environment variable name) or {what}_file (a file path)"
            ));
            None
        }
    };
    let file = |key: &str, value: &Option<NonEmpty>, problems: &mut Problems| match value {
        Some(v) => Some(absolute(dir, &v.0)),
        None => {
            problems.at(0, vec![PathSeg::key("openbao"), PathSeg::key("auth")], format!("method approle needs {key}"));
            None
        }
    };
    let auth = match raw.method {
        AuthMethod::Token => Auth::Token(source(&raw.token_env, &raw.token_file, "token", problems)?),
        AuthMethod::Jwt => Auth::Jwt {
            mount: raw.mount.as_ref().map_or_else(|| "jwt".to_string(), |m| m.0.clone()),
            role: raw.role.as_ref().map(|r| r.0.clone()),
            jwt: source(&raw.jwt_env, &raw.jwt_file, "jwt", problems)?,
        },
        AuthMethod::Approle => {
            let role_id_file = file("role_id_file", &raw.role_id_file, problems);
            let secret_id_file = file("secret_id_file", &raw.secret_id_file, problems);
            Auth::AppRole {
                mount: raw.mount.as_ref().map_or_else(|| "approle".to_string(), |m| m.0.clone()),
                role_id_file: role_id_file?,
                secret_id_file: secret_id_file?,
            }
        }
    };
    (problems.len() == before).then_some(auth)
}

fn tls_keys(raw: &RawOpenbao) -> [(&'static str, bool); 4] {
    [
        ("ca_cert", raw.ca_cert.is_some()),
        ("client_cert", raw.client_cert.is_some()),
        ("client_key", raw.client_key.is_some()),
        ("tls_server_name", raw.tls_server_name.is_some()),
    ]
}

/// `ca_cert`, `client_cert` + `client_key` (readable PEM files, relative to the file) and
/// `tls_server_name`, with an `https://` address only.
fn tls(raw: &RawOpenbao, address: Option<&str>, dir: &Path, problems: &mut Problems) -> Option<Tls> {
    let at = |key: &str| vec![PathSeg::key("openbao"), PathSeg::key(key)];
    let before = problems.len();
    if address.is_some_and(|a| !a.starts_with("https://")) {
        for (key, set) in tls_keys(raw) {
            if set {
                problems.at(0, at(key), format!("{key} needs an https:// address"));
            }
        }
    }
    let mut file = |key: &str, value: &Option<NonEmpty>, kind: Pem| {
        let path = absolute(dir, &value.as_ref()?.0);
        if let Err(message) = check_pem(&path, kind) {
            problems.at(0, at(key), message);
        }
        Some(path)
    };
    let ca_cert = file("ca_cert", &raw.ca_cert, Pem::Certificate);
    let cert = file("client_cert", &raw.client_cert, Pem::Certificate);
    let key = file("client_key", &raw.client_key, Pem::PrivateKey);
    let client = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => {
            problems.at(0, at("client_cert"), "client_cert needs client_key (the certificate's private key)");
            None
        }
        (None, Some(_)) => {
            problems.at(0, at("client_key"), "client_key needs client_cert (the certificate it belongs to)");
            None
        }
    };
    let server_name = raw.tls_server_name.as_ref().map(|n| n.0.clone());
    if let Some(name) = &server_name {
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
            problems.at(0, at("tls_server_name"), format!("tls_server_name {name:?} is not a DNS name (letters, digits, '-', '.')"));
        }
    }
    (problems.len() == before).then_some(Tls { ca_cert, client, server_name })
}

/// `p` resolved against `dir`, made absolute and lexically normalized (`.` and `..` removed).
fn absolute(dir: &Path, p: &str) -> PathBuf {
    let joined = dir.join(p);
    let abs = std::path::absolute(&joined).unwrap_or(joined);
    normalize(&abs)
}

/// Remove `.` components and fold `..` into its parent, without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Read and parse every `*.yaml` / `*.yml` file in `workspaces_dir` (sorted by name), adding each
/// readable file to `sources`. Returns the parsed workspaces with their source ids.
fn read_workspace_dir(
    dir: &Path,
    ws_dir: &str,
    sources: &mut Sources,
    problems: &mut Problems,
) -> Vec<(usize, RawWorkspace)> {
    let full = dir.join(ws_dir);
    let names = match list_yaml_files(&full) {
        Ok(names) => names,
        Err(e) => {
            let message = format!("cannot read workspaces_dir {}: {e}", full.display());
            problems.at(0, vec![PathSeg::key("workspaces_dir")], message);
            return Vec::new();
        }
    };
    let rel_dir = normalize(Path::new(ws_dir));
    let paths: Vec<PathBuf> = names.iter().map(|n| full.join(n)).collect();
    let parsed = crate::par::map(&paths, |path| parse_file(path));
    let mut out = Vec::with_capacity(paths.len());
    for ((path, name), (text, result)) in paths.into_iter().zip(&names).zip(parsed) {
        let id = sources.files.len();
        // An unreadable file is not a source; its error takes the id the next file will have,
        // which only affects the order errors are listed in.
        if let Some(text) = text {
            sources.files.push(Source { path, rel: rel_dir.join(name), text });
        }
        match result {
            Ok(ws) => out.push((id, ws)),
            Err(e) => problems.located(id, e),
        }
    }
    out
}

/// File names in `dir` ending in `.yaml` or `.yml` (not hidden), sorted.
fn list_yaml_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if name.starts_with('.') || !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let file_type = entry.file_type()?;
        let is_file = file_type.is_file() || (file_type.is_symlink() && entry.path().is_file());
        if is_file {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Read and parse one workspace file: its text (`None` if unreadable) and the result.
fn parse_file(path: &Path) -> (Option<String>, Result<RawWorkspace, ConfigError>) {
    match read_text(path) {
        Ok(text) => {
            let result = parse_yaml(path, &text);
            (Some(text), result)
        }
        Err(e) => (None, Err(ConfigError::whole_file(path, format!("cannot read workspace file: {e}")))),
    }
}

/// Read a text file with few system calls (no size query) and an exactly sized result: the
/// bytes go through a reused per-thread buffer, and thousands of these strings are kept.
fn read_text(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with_borrow_mut(|buffer| {
        buffer.clear();
        buffer.reserve(8192);
        std::fs::File::open(path)?.take(u64::MAX).read_to_end(buffer)?;
        String::from_utf8(buffer.to_vec())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
    })
}

/// Deserialize one file: the fast path for the common subset of YAML, else serde_yaml (which
/// also gives positioned errors).
fn parse_yaml<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    if let Some(value) = super::fast::from_str(text) {
        return Ok(value);
    }
    serde_yaml::from_str(text).map_err(|e| ConfigError::from_yaml(path, &e))
}

/// SHA-256 hex over `"<rel>\0<bytes>\0"` of every source, sorted by relative path.
fn digest(sources: &Sources) -> String {
    let mut order: Vec<&Source> = sources.files.iter().collect();
    order.sort_by(|a, b| a.rel.cmp(&b.rel));
    let mut hasher = Sha256::new();
    for source in order {
        hasher.update(rel_text(&source.rel).as_bytes());
        hasher.update([0u8]);
        hasher.update(source.text.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(hasher.finalize())
}

/// A relative path with `/` separators, the same on every platform.
fn rel_text(rel: &Path) -> String {
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

fn sorted_paths(sources: &Sources) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = sources.files.iter().map(|s| s.path.clone()).collect();
    paths.sort();
    paths
}
