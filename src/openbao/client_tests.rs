//! Tests of [`super`], kept apart so the module itself stays readable.
//! (Indented as they were inside `mod tests`, so multi-line literals are unchanged.)

    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        assert!(p.delay(1) <= Duration::from_millis(200));
        assert!(p.delay(10) <= p.max);
        assert!(p.delay(10) >= p.max / 2);
    }

    #[test]
    fn unknown_parameter_warning_is_an_error() {
        let body = br#"{"data":{},"warnings":["Endpoint ignored these unrecognized parameters: [bogus]"]}"#;
        let err = parse_body("POST", "transit/keys/k", &None, body).unwrap_err();
        assert!(matches!(err, BaoError::IgnoredParameters { .. }));
        assert!(err.to_string().contains("bogus"));
    }

    #[test]
    fn kv_upgrade_in_progress_is_transient() {
        let body = r#"{"errors":["Upgrading from non-versioned to versioned data. This backend will be unavailable for a brief period and will resume service shortly."]}"#;
        assert!(kv_upgrading(400, Some(body)));
        assert!(!kv_upgrading(400, Some(r#"{"errors":["invalid"]}"#)));
    }

    #[test]
    fn only_failures_openbao_did_not_act_on_are_safe_to_resend() {
        let status = |code: u16, body: &str| HttpError::ServerResponseError { code, content: Some(body.to_string()) };
        assert_eq!(classify(&status(429, "{}"), true), Failure::NotActedOn);
        assert_eq!(classify(&status(404, r#"{"errors":["no handler for route \"x\""]}"#), true), Failure::NotActedOn);
        assert_eq!(classify(&status(404, r#"{"errors":["no handler for route \"x\""]}"#), false), Failure::Final);
        assert_eq!(classify(&status(502, "{}"), true), Failure::MaybeActedOn);
        assert_eq!(classify(&status(503, "{}"), false), Failure::MaybeActedOn);
        assert_eq!(classify(&status(501, "{}"), true), Failure::Final);
        assert_eq!(classify(&status(400, "{}"), true), Failure::Final);
    }

    /// A refused connection sent nothing, so even a once-only call is retried, and the error
    /// is "cannot reach", not "outcome unknown".
    #[tokio::test]
    async fn refused_connections_are_retried_even_for_once_only_calls() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut bao = Bao::connect(&format!("http://127.0.0.1:{port}"), &Sensitive::new("t".into()), 1).unwrap();
        bao.retry = RetryPolicy { attempts: 3, base: Duration::from_millis(1), max: Duration::from_millis(2) };
        let once = Idempotency::Once { check: "look" };
        let err = bao.call(&bao.scoped(None), RequestMethod::POST, "auth/x/login", Some(&Value::Null), once).await.unwrap_err();
        assert!(matches!(err, BaoError::Unreachable { attempts: 3, .. }), "{err}");
        assert_eq!(bao.requests(), 3);
    }

    #[test]
    fn outcome_unknown_says_what_to_check() {
        let err = BaoError::OutcomeUnknown {
            method: "POST",
            path: "auth/approle/role/app/secret-id".into(),
            namespace: Some("team-a".into()),
            cause: "HTTP 502".into(),
            check: "look at the accessors".into(),
        };
        assert_eq!(
            err.to_string(),
            "POST auth/approle/role/app/secret-id (namespace team-a): outcome unknown (HTTP 502 after the request was sent); it may have succeeded: look at the accessors"
        );
    }

    /// rustls's error arrives inside nested `io::Error`s (what hyper's connector gives).
    #[test]
    fn certificate_errors_are_found_and_explained() {
        let wrap = |e: rustls::Error| std::io::Error::other(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
        let base = "https://bao.example:8200";
        let unknown = wrap(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer));
        assert!(tls_problem(&unknown, base).unwrap().contains("not trusted (unknown issuer); set openbao.ca_cert or BAO_CACERT"));
        let name = wrap(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName));
        assert!(tls_problem(&name, base).unwrap().contains("not valid for the name bao.example"));
        let expired = wrap(rustls::Error::InvalidCertificate(rustls::CertificateError::Expired));
        assert!(tls_problem(&expired, base).unwrap().contains("has expired"));
        assert_eq!(tls_problem(&std::io::Error::from(std::io::ErrorKind::ConnectionRefused), base), None);
    }

    #[test]
    fn error_bodies_keep_only_errors() {
        assert_eq!(api_errors(Some(r#"{"errors":["permission denied"],"data":{"secret":"x"}}"#)), "permission denied");
        assert_eq!(api_errors(Some("<html>")), "non-JSON error response");
    }
