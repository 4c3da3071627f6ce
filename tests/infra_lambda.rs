#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The SAM template (infra/aws/template.yaml) against the Lambda host it deploys
//! (src/host/lambda): the environment it sets is read by the code and is enough for the host to
//! start with the Azure client secret taken from Secrets Manager through the Parameters and
//! Secrets extension, the extension's layer is attached, and the schedule's payload is an
//! invocation the host reads as a scheduled audit.

#[path = "infra/bicep.rs"]
mod bicep;
#[path = "infra/sam.rs"]
mod sam;

use std::collections::BTreeMap;
use std::path::Path;

use linkguard::config;
use linkguard::host::lambda::cli::{LambdaArgs, MIN_SECRET_LEN, RUNTIME_VARS, prepare};
use linkguard::host::lambda::invocation::{Invocation, SCHEDULED_EVENT};
use linkguard::host::lambda::secrets::{
    self, CLIENT_SECRET_ARN, CredentialSource, EXTENSION_PORT, SESSION_TOKEN,
};
use regex::Regex;
use sam::{Node, unquote};
use serde_json::{Value, json};

const TEMPLATE: &str = "infra/aws/template.yaml";
const FUNCTION: &str = "LinkguardFunction";
const SECRET_ARN: &str =
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:stack/azure-client-secret-AbCdEf";

/// Every variable the Lambda host reads from its environment (besides those Lambda itself sets):
/// the settings of src/config.rs that apply on Lambda, the client-secret credential's
/// (src/arm/credential.rs) and src/host/lambda/secrets.rs's, and the log filters of
/// src/host/lambda/cli.rs.
fn read_by_the_lambda_host() -> Vec<&'static str> {
    vec![
        config::POLICY,
        config::ARM_ENDPOINT,
        config::CREDENTIAL,
        config::REPORTS,
        config::EVENT_TOPICS,
        config::WEBHOOK_SECRET,
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_AUTHORITY_HOST",
        CLIENT_SECRET_ARN,
        EXTENSION_PORT,
        "LINKGUARD_LOG",
        "RUST_LOG",
    ]
}

/// Stand-ins for the parameters without a default (what `sam deploy --guided` asks for).
fn sample(parameter: &str) -> &'static str {
    match parameter {
        "AzureTenantId" => "00000000-0000-0000-0000-000000000001",
        "AzureClientId" => "00000000-0000-0000-0000-000000000002",
        "ReportsContainerUrl" => "https://acme.blob.core.windows.net/linkguard-reports",
        "EventTopics" => "/subscriptions/00000000-0000-0000-0000-0000000000aa",
        other => panic!("{TEMPLATE}: parameter {other} has no default; give the test a sample"),
    }
}

struct Template {
    text: String,
}

impl Template {
    fn load() -> Self {
        Self {
            text: bicep::read(TEMPLATE),
        }
    }
    fn root(&self) -> Node<'_> {
        Node::root(&self.text)
    }
    fn resource_type(&self, name: &str) -> Option<String> {
        self.root()
            .find("Resources")?
            .find(name)
            .map(|r| r.at(&["Type"]).value.to_string())
    }

    /// A parameter's value at deployment: its default, else the sample; checked against its
    /// AllowedPattern either way.
    fn parameter(&self, name: &str) -> String {
        let p = self.root().at(&["Parameters", name]);
        let value = match p.find("Default") {
            Some(d) => unquote(&d.scalar()).to_string(),
            None => sample(name).to_string(),
        };
        if let Some(pattern) = p.find("AllowedPattern") {
            let re = Regex::new(unquote(pattern.value)).unwrap();
            assert!(
                re.is_match(&value),
                "{TEMPLATE}: {name} = `{value}` does not match its AllowedPattern"
            );
        }
        value
    }

    /// Evaluates one environment value as CloudFormation would at deployment.
    fn evaluate(&self, var: &str, raw: &str) -> String {
        if let Some(name) = raw.strip_prefix("!Ref ") {
            let name = name.trim();
            if self.root().at(&["Parameters"]).find(name).is_some() {
                return self.parameter(name);
            }
            // Ref of a Secrets Manager secret is its ARN.
            assert_eq!(
                self.resource_type(name).as_deref(),
                Some("AWS::SecretsManager::Secret"),
                "{TEMPLATE}: {var} = !Ref {name}, which this test cannot evaluate"
            );
            return SECRET_ARN.to_string();
        }
        if let Some(sub) = raw.strip_prefix("!Sub ") {
            // Only the dynamic reference to a generated secret: its value is the generated string.
            let re =
                Regex::new(r"^\{\{resolve:secretsmanager:\$\{(\w+)\}:SecretString\}\}$").unwrap();
            let caps = re.captures(unquote(sub.trim())).unwrap_or_else(|| {
                panic!("{TEMPLATE}: {var} = {raw}, which this test cannot evaluate")
            });
            let secret = self.root().at(&["Resources", &caps[1]]);
            assert_eq!(secret.at(&["Type"]).value, "AWS::SecretsManager::Secret");
            let length: usize = secret
                .at(&["Properties", "GenerateSecretString", "PasswordLength"])
                .value
                .parse()
                .unwrap();
            return "s".repeat(length);
        }
        assert!(
            !raw.starts_with('!'),
            "{TEMPLATE}: {var} = {raw}, which this test cannot evaluate"
        );
        unquote(raw).to_string()
    }

    /// `name -> raw value` of the function's environment.
    fn environment_raw(&self) -> Vec<(String, String)> {
        self.root()
            .at(&[
                "Resources",
                FUNCTION,
                "Properties",
                "Environment",
                "Variables",
            ])
            .entries()
            .into_iter()
            .map(|(k, n)| (k, n.scalar()))
            .collect()
    }

    fn environment(&self) -> BTreeMap<String, String> {
        self.environment_raw()
            .into_iter()
            .map(|(k, raw)| {
                let v = self.evaluate(&k, &raw);
                (k, v)
            })
            .collect()
    }
}

/// The deployment package as Lambda unpacks it in /var/task: the policy beside the binary
/// (infra/README.md copies the operator's policy there; the example policy stands in for it).
fn package() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        bicep::repo_root().join("examples/policy.toml"),
        dir.path().join(config::DEFAULT_POLICY_FILE),
    )
    .unwrap();
    dir
}

/// What the Lambda process sees: the template's environment (a relative policy path resolved in
/// the package, as the working directory /var/task does) plus what Lambda sets itself.
fn process_environment(
    template: &Template,
    env: &BTreeMap<String, String>,
    task: &Path,
) -> BTreeMap<String, String> {
    let mut all = env.clone();
    if let Some(policy) = all.get_mut(config::POLICY)
        && !policy.starts_with("https://")
        && Path::new(policy.as_str()).is_relative()
    {
        *policy = task.join(policy.as_str()).display().to_string();
    }
    let memory = template
        .root()
        .at(&["Resources", FUNCTION, "Properties", "MemorySize"])
        .value
        .to_string();
    for var in RUNTIME_VARS {
        let value = match var {
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => memory.clone(),
            _ => format!("set-by-lambda-{var}"),
        };
        all.insert(var.to_string(), value);
    }
    all.insert(SESSION_TOKEN.to_string(), "session-token".into());
    all
}

/// Starts the host as `linkguard lambda` does (settings, webhook secret, policy, then the
/// credential) and says where the Azure client secret comes from.
fn start(env: &BTreeMap<String, String>) -> Result<CredentialSource, String> {
    let lookup = |k: &str| env.get(k).cloned();
    let prepared = prepare(&LambdaArgs::default(), lookup)?;
    secrets::credential(&prepared.settings, &lookup).map(|(_, source)| source)
}

#[test]
fn every_variable_set_is_read_by_the_lambda_host() {
    let template = Template::load();
    let known = read_by_the_lambda_host();
    let raw = template.environment_raw();
    assert!(
        !raw.is_empty(),
        "{TEMPLATE}: no environment variables found"
    );
    for (name, _) in &raw {
        assert!(
            known.contains(&name.as_str()),
            "{TEMPLATE}: {name} is set but the Lambda host never reads it (known: {known:?})"
        );
    }
    // The client secret itself never sits in the template or the function's configuration.
    assert!(!raw.iter().any(|(n, _)| n == "AZURE_CLIENT_SECRET"));
}

#[test]
fn the_environment_starts_the_host_with_the_secret_from_secrets_manager() {
    let template = Template::load();
    let env = template.environment();
    let task = package();
    let all = process_environment(&template, &env, task.path());
    assert_eq!(
        start(&all),
        Ok(CredentialSource::SecretsManagerExtension),
        "{TEMPLATE}: the host must start and take the Azure client secret through the extension"
    );

    // Each of these alone stops that: the deployment would not start, or not sign in to Azure.
    for required in [
        config::WEBHOOK_SECRET,
        config::CREDENTIAL,
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        CLIENT_SECRET_ARN,
    ] {
        assert!(
            env.contains_key(required),
            "{TEMPLATE}: {required} is not set"
        );
        let mut without = all.clone();
        without.remove(required);
        assert_ne!(
            start(&without),
            Ok(CredentialSource::SecretsManagerExtension),
            "without {required} the host should not start with the extension's secret; is it still required?"
        );
    }
    // Not checked by start, required all the same: the default report directory sits in the
    // read-only /var/task, and without topics every Event Grid event is ignored.
    assert!(
        env[config::REPORTS].starts_with("https://"),
        "{TEMPLATE}: LINKGUARD_REPORTS must be a blob container URL"
    );
    assert!(
        !env[config::EVENT_TOPICS].trim().is_empty(),
        "{TEMPLATE}: LINKGUARD_EVENT_TOPICS must be set"
    );
    assert!(env[config::WEBHOOK_SECRET].len() >= MIN_SECRET_LEN);
}

#[test]
fn the_secrets_extension_layer_is_attached_for_every_region() {
    let template = Template::load();
    let root = template.root();
    let function = root.at(&["Resources", FUNCTION, "Properties"]);
    assert_eq!(function.at(&["Architectures"]).list(), ["arm64"]);
    assert_eq!(
        function.at(&["Layers"]).list(),
        [
            "!If\n- ExtensionLayerGiven\n- !Ref ParametersSecretsExtensionLayerArn\n- !FindInMap [ParametersSecretsExtensionArm64, !Ref AWS::Region, Arn]"
        ],
        "{TEMPLATE}: the function's only layer is the Parameters and Secrets extension (given, or the region's)"
    );
    assert_eq!(
        root.at(&["Conditions", "ExtensionLayerGiven"]).value,
        r#"!Not [!Equals [!Ref ParametersSecretsExtensionLayerArn, ""]]"#
    );
    assert_eq!(template.parameter("ParametersSecretsExtensionLayerArn"), "");

    let override_pattern = Regex::new(unquote(
        root.at(&[
            "Parameters",
            "ParametersSecretsExtensionLayerArn",
            "AllowedPattern",
        ])
        .value,
    ))
    .unwrap();
    let arn = Regex::new(
        r"^arn:(aws|aws-cn|aws-us-gov):lambda:([a-z0-9-]+):[0-9]{12}:layer:AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:[0-9]+$",
    )
    .unwrap();
    let regions = root
        .at(&["Mappings", "ParametersSecretsExtensionArm64"])
        .entries();
    for required in ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1"] {
        assert!(
            regions.iter().any(|(r, _)| r == required),
            "{TEMPLATE}: no extension layer for {required}"
        );
    }
    for (region, entry) in &regions {
        let value = entry.at(&["Arn"]).value;
        let caps = arn.captures(value).unwrap_or_else(|| {
            panic!("{TEMPLATE}: {region}: `{value}` is not an arm64 extension layer ARN")
        });
        assert_eq!(&caps[2], region, "{TEMPLATE}: layer ARN of another region");
        let partition = if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        };
        assert_eq!(&caps[1], partition, "{TEMPLATE}: {region}: partition");
        assert!(
            override_pattern.is_match(value),
            "the parameter's AllowedPattern must accept the published ARNs ({value})"
        );
    }

    // The extension reads the secret as the function's role: that role may read this secret.
    let statements = function.at(&["Policies"]).list().join("\n");
    assert!(
        statements
            .contains("Action: secretsmanager:GetSecretValue\nResource: !Ref AzureClientSecret"),
        "{TEMPLATE}: the function's role must be allowed secretsmanager:GetSecretValue on AzureClientSecret"
    );
    let env = template.environment_raw();
    assert!(
        env.iter()
            .any(|(k, v)| k == CLIENT_SECRET_ARN && v == "!Ref AzureClientSecret"),
        "{TEMPLATE}: {CLIENT_SECRET_ARN} must name AzureClientSecret"
    );
}

#[test]
fn the_schedule_payload_is_a_scheduled_audit() {
    let template = Template::load();
    let target = template
        .root()
        .at(&["Resources", "AuditSchedule", "Properties", "Target"]);
    assert_eq!(target.at(&["Arn"]).value, "!GetAtt LinkguardFunction.Arn");
    let input = target.at(&["Input"]).scalar();
    let body = input
        .strip_prefix("!Sub ")
        .unwrap_or_else(|| panic!("{TEMPLATE}: the schedule's Input should be a !Sub string"));
    let body = body
        .replace("${AWS::AccountId}", "123456789012")
        .replace("${AWS::Region}", "eu-west-1");
    assert!(
        !body.contains("${"),
        "{TEMPLATE}: unevaluated ${{...}} in {body}"
    );

    // As written, and as Scheduler delivers it (its context attributes filled in).
    let written: Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{TEMPLATE}: the schedule's Input is not JSON ({e}): {body}"));
    assert_eq!(written["detail-type"], json!(SCHEDULED_EVENT));
    let delivered = body
        .replace(
            "<aws.scheduler.execution-id>",
            "d9a7c1b0-3a59-4d2b-9c0e-1f2a3b4c5d6e",
        )
        .replace("<aws.scheduler.scheduled-time>", "2026-12-07T18:00:00Z")
        .replace(
            "<aws.scheduler.schedule-arn>",
            "arn:aws:scheduler:eu-west-1:123456789012:schedule/default/linkguard",
        );
    match Invocation::classify(written) {
        Invocation::Schedule(s) => assert_eq!(s.source, "aws.scheduler"),
        other => panic!("{TEMPLATE}: the schedule's Input is read as {other:?}"),
    }
    match Invocation::classify(serde_json::from_str(&delivered).unwrap()) {
        Invocation::Schedule(s) => {
            assert_eq!(s.time.as_deref(), Some("2026-12-07T18:00:00+00:00"));
            assert_eq!(
                s.resources,
                ["arn:aws:scheduler:eu-west-1:123456789012:schedule/default/linkguard"]
            );
        }
        other => panic!("{TEMPLATE}: the delivered schedule is read as {other:?}"),
    }
}

#[test]
fn policy_location_is_described_as_the_code_reads_it() {
    let template = Template::load();
    let description = template
        .root()
        .at(&["Parameters", "PolicyLocation", "Description"])
        .scalar();
    for part in ["a path in the package", "an https blob URL"] {
        assert!(
            description.contains(part),
            "{TEMPLATE}: PolicyLocation's description should say `{part}`: {description}"
        );
    }
}
