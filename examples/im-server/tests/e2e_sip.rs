//! End-to-end tests: the `im-server` binary against SIPp scenarios in `tests/sipp/`.
//!
//! Each test starts the real binary on free ports and drives it with SIPp as originator and
//! as invitees; a few check the harness itself, that every scenario loads in SIPp, and the
//! binary's flag handling. A missing SIPp fails the tests with the install command.

#![allow(clippy::disallowed_methods)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Server, Sipp, group_folder, locate_sipp, scenario_dir};

const UAC_SCENARIOS: &[&str] = &[
    "invite_pager",
    "invite_pager_audio",
    "invite_pager_info",
    "invite_pager_routed",
    "invite_retransmit",
    "options",
    "malformed",
    "unknown_method",
    "require_unknown",
    "invite_resource_list",
    "message_text",
    "message_list",
    "message_list_cpim",
    "message_list_only",
    "pager_msrp",
    "pager_msrp_list",
    "invite_refused",
    "register_auth",
    "message_list_auth",
    "pager_msrp_auth",
    "invite_body_malformed",
    "invite_list_400",
    "pager_subscribe_in_dialog",
];
const UAS_SCENARIOS: &[&str] = &[
    "uas_answer",
    "uas_busy",
    "uas_ring_cancel",
    "uas_message",
    "uas_msrp",
];

/// Every scenario file is used by this list, so a new file cannot go unvalidated.
#[test]
fn every_scenario_file_is_listed() {
    let mut files: Vec<String> = std::fs::read_dir(scenario_dir())
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "xml").then(|| p.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = UAC_SCENARIOS
        .iter()
        .chain(UAS_SCENARIOS)
        .map(|s| s.to_string())
        .collect();
    listed.sort();
    assert_eq!(files, listed);
}

/// SIPp reports a broken scenario file on stderr (seen with SIPp 3.6.1: a parse error
/// exits 1 with "Unable to load or parse …", an unknown attribute or keyword aborts with an
/// assertion in its logger). Against a closed port the only expected lines are the
/// resolver's, a call's receive timeout (UAC) or the global timeout (UAS); any other line is
/// a problem with the file.
fn assert_no_scenario_error(name: &str, run: &common::SippRun) {
    let unexpected: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| {
            let expected = l.trim().is_empty()
                || l.starts_with("Resolving remote host")
                || (l.contains("Call-Id:") && l.contains("receive timeout on message"))
                || l.contains("timed out after");
            !expected
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "{name}: SIPp reported a scenario problem: {unexpected:?}\n{run:?}"
    );
    assert!(!run.killed, "{name}: SIPp had to be killed:\n{run:?}");
}

/// The server end is not ready, so each scenario runs against a closed port: a UAC must
/// send its first request and then time out waiting for the answer; a UAS must wait for an
/// INVITE until the global timeout. Anything else means SIPp could not use the file.
#[test]
fn scenarios_load_in_sipp() {
    let closed = ([127, 0, 0, 1], common::free_udp_port()).into();
    for name in UAC_SCENARIOS {
        let run = Sipp::new(name)
            .to(closed)
            .key("target", "sip:friends@example.com")
            .key("from", "sip:alice@example.com")
            .key("invitee1", "sip:bob@127.0.0.1:5999")
            .key("invitee2", "sip:carol@127.0.0.1:5998")
            .key("invitee3", "sip:dave@127.0.0.1:5997")
            .key("msrp_port", "7654")
            .key("setup", "a=setup:active")
            .key("answer_setup", "a=setup:passive")
            .key("accept", "text/plain")
            .key("cp_ns", "urn:ietf:params:xml:ns:copycontrol")
            .key("entries", "<entry uri=\"sip:bob@127.0.0.1:5999\"/>")
            .key("user", "alice")
            .key("expires", "600")
            .timeouts(Duration::from_millis(500), Duration::from_secs(3))
            .run();
        assert_no_scenario_error(name, &run);
        assert_eq!(
            run.code(),
            Some(1),
            "{name}: expected a failed call:\n{run:?}"
        );
        assert!(
            run.stderr.contains("receive timeout"),
            "{name}: expected a receive timeout:\n{run:?}"
        );
        let first_line = run
            .messages
            .lines()
            .skip_while(|l| !l.contains("message sent"))
            .nth(2)
            .unwrap_or_default()
            .to_owned();
        assert!(
            first_line.ends_with("SIP/2.0") && first_line.contains("sip:"),
            "{name}: no request was sent ({first_line:?}):\n{run:?}"
        );
    }
    for name in UAS_SCENARIOS {
        let run = Sipp::new(name)
            .key("msrp_port", "7655")
            .timeouts(Duration::from_millis(500), Duration::from_secs(2))
            .run();
        assert_no_scenario_error(name, &run);
        assert_eq!(run.code(), Some(255), "{name}:\n{run:?}");
        assert!(run.stderr.contains("timed out after"), "{name}:\n{run:?}");
    }
}

/// A missing SIPp is a failure with the install command, never a silent pass.
#[test]
fn harness_finds_sipp_or_says_how_to_install_it() {
    let empty = tempfile::tempdir().unwrap();
    let err = locate_sipp(None, Some(empty.path().as_os_str().to_owned())).unwrap_err();
    assert!(err.contains("apt-get install -y sip-tester"), "{err}");
    let err = locate_sipp(Some("/nonexistent/sipp".into()), None).unwrap_err();
    assert!(err.contains("/nonexistent/sipp"), "{err}");
    // And on this machine it is there (the e2e tests fail loudly otherwise).
    assert!(common::sipp().is_file());
}

/// The port handed out was held on both protocols at once. (Re-binding it after release
/// would race with the other tests running in parallel, which take ports too.)
#[test]
fn free_sip_port_is_free_for_udp_and_tcp() {
    let (p, u, t) = common::reserve_sip_port();
    assert_eq!(u.local_addr().unwrap().port(), p);
    assert_eq!(t.local_addr().unwrap().port(), p);
    assert_ne!(p, 0);
}

/// The ports handed to the processes a test starts are outside the kernel's ephemeral
/// range, so no port-0 bind or outgoing connection of a parallel test gets one between the
/// pick and the child's bind; and no two tests are handed the same one: the claim is a lock
/// that a second open of the port's file (as another test process makes) cannot take.
#[test]
fn claimed_ports_are_never_the_kernels_nor_handed_out_twice() {
    use common::ports::{LOWEST, claim, ephemeral_start, lock_dir};
    let ports: Vec<u16> = (0..3)
        .map(|_| common::free_udp_port())
        .chain((0..3).map(|_| common::free_tcp_port()))
        .chain((0..50).map(|_| claim()))
        .collect();
    let mut unique = ports.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ports.len(), "{ports:?}");
    let top = ephemeral_start();
    assert!(
        ports.iter().all(|p| (LOWEST..top).contains(p)),
        "{ports:?} not all in {LOWEST}..{top}"
    );
    for p in &ports {
        let f = std::fs::File::open(lock_dir().join(p.to_string())).expect("the lock file");
        assert!(f.try_lock().is_err(), "port {p} could be claimed again");
    }
}

fn server_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_im-server"))
}

#[test]
fn binary_rejects_bad_flags_and_files_clearly() {
    let out = server_cmd().args(["--sip", "nonsense"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--sip"), "{err}");

    let out = server_cmd()
        .args(["--config", "/nonexistent/im-server.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/im-server.toml"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.toml");
    std::fs::write(&f, "[limits]\nmax_recipients = 0\n").unwrap();
    let out = server_cmd().arg("--config").arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("limits.max_recipients"), "{err}");
}

#[test]
fn binary_check_and_print_config() {
    let out = server_cmd().arg("--check").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 group(s)"));

    // A bad group document makes --check fail and names the file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.xml"), "<group").unwrap();
    let out = server_cmd()
        .arg("--check")
        .arg("--groups")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.xml"));

    // --print-config output is a config file that loads back.
    let out = server_cmd()
        .args([
            "--print-config",
            "--domain",
            "im.example.net",
            "--t1",
            "250ms",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let f = dir.path().join("printed.toml");
    std::fs::write(&f, &out.stdout).unwrap();
    let again = server_cmd()
        .arg("--print-config")
        .arg("--config")
        .arg(&f)
        .output()
        .unwrap();
    assert!(again.status.success(), "{again:?}");
    assert_eq!(again.stdout, out.stdout);
}

// ---- behaviour of the running server ---------------------------------------------------

const GROUP: &str = "sip:e2e@example.com";
const ALICE: &str = "sip:alice@example.com";

fn uac(name: &str, server: &Server, target: &str) -> Sipp {
    Sipp::new(name)
        .to(server.sip)
        .key("target", target)
        .key("from", ALICE)
}

#[test]
fn server_starts_and_listens() {
    let s = Server::start(&[]);
    assert_ne!(s.sip.port(), 0);
}

#[test]
fn options_gets_200_with_allow_over_udp_and_tcp() {
    let s = Server::start(&[]);
    let run = uac("options", &s, "sip:example.com").run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    let run = uac("options", &s, "sip:example.com").tcp().run();
    assert!(run.success(), "{run:?}\n{}", s.log());
}

#[test]
fn unknown_method_gets_501() {
    let s = Server::start(&[]);
    let run = uac("unknown_method", &s, "sip:friends@example.com").run();
    assert!(run.success(), "{run:?}\n{}", s.log());
}

#[test]
fn malformed_request_gets_400() {
    let s = Server::start(&[]);
    let run = uac("malformed", &s, "sip:friends@example.com").run();
    assert!(run.success(), "{run:?}\n{}", s.log());
}

#[test]
fn unknown_require_gets_420_with_unsupported() {
    let s = Server::start(&[]);
    let run = uac("require_unknown", &s, "sip:friends@example.com").run();
    assert!(run.success(), "{run:?}\n{}", s.log());
}

/// Two invitee UASes on free ports, members of a temp group with the originator.
fn invitees(scenarios: &[&str]) -> (Vec<common::SippProc>, Vec<String>) {
    let mut procs = Vec::new();
    let mut uris = Vec::new();
    for (i, sc) in scenarios.iter().enumerate() {
        let sipp = Sipp::new(sc).timeouts(Duration::from_secs(20), Duration::from_secs(30));
        uris.push(format!("sip:invitee{i}@{}", sipp.local()));
        procs.push(sipp.spawn());
    }
    // Give the UASes a moment to bind before anyone sends to them.
    std::thread::sleep(Duration::from_millis(300));
    (procs, uris)
}

// covers: 5.2.1.1/predefined
// covers: 7.9.1.5/setup
// covers: 7.9.1.1/accept_with_answer
#[test]
fn pager_invite_to_group_reaches_every_member() {
    let (uas, uris) = invitees(&["uas_answer", "uas_answer"]);
    let mut members = uris.clone();
    members.push(ALICE.to_owned());
    let groups = group_folder(GROUP, &members);
    let s = Server::start(&["--groups", groups.path().to_str().unwrap()]);
    let run = uac("invite_pager", &s, GROUP).run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    for p in uas {
        let r = p.wait();
        assert!(r.success(), "invitee: {r:?}\n{}", s.log());
        assert_eq!(r.received_invites(), 1, "{r:?}");
    }
}

/// Issue 12: an in-dialog request no rule names (INFO) is answered by the spec's
/// `on request other` rule, 405 with Allow, on the real binary; the session then ends by
/// BYE as usual.
// covers: 6.1.3.3.2/other_method
#[test]
fn info_in_the_originators_dialog_gets_the_specs_405() {
    let (uas, uris) = invitees(&["uas_answer", "uas_answer"]);
    let mut members = uris.clone();
    members.push(ALICE.to_owned());
    let groups = group_folder(GROUP, &members);
    let s = Server::start(&["--groups", groups.path().to_str().unwrap()]);
    let run = uac("invite_pager_info", &s, GROUP).run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    for p in uas {
        let r = p.wait();
        assert!(r.success(), "invitee: {r:?}\n{}", s.log());
    }
    assert!(
        s.log().contains("rule=6.1.3.3.2/other_method"),
        "the 405 must come from the spec's rule:\n{}",
        s.log()
    );
}

/// Issue 12: an offer that is pager mode only as the RFCs read it (session-level sendonly,
/// `text/*`, an extra audio stream) is accepted, the audio refused with port 0, and the
/// message line answered; the invitees are invited as for the plain offer.
#[test]
fn pager_offer_with_session_sendonly_wildcard_types_and_audio_is_accepted() {
    let (uas, uris) = invitees(&["uas_answer", "uas_answer"]);
    let mut members = uris.clone();
    members.push(ALICE.to_owned());
    let groups = group_folder(GROUP, &members);
    let s = Server::start(&["--groups", groups.path().to_str().unwrap()]);
    let run = uac("invite_pager_audio", &s, GROUP).run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    for p in uas {
        let r = p.wait();
        assert!(r.success(), "invitee: {r:?}\n{}", s.log());
        assert_eq!(r.received_invites(), 1, "{r:?}");
    }
}

#[test]
fn retransmitted_invite_fans_out_once_with_the_same_answer() {
    let (uas, uris) = invitees(&["uas_answer", "uas_answer"]);
    let mut members = uris.clone();
    members.push(ALICE.to_owned());
    let groups = group_folder(GROUP, &members);
    let s = Server::start(&["--groups", groups.path().to_str().unwrap()]);
    let run = uac("invite_retransmit", &s, GROUP).run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    for p in uas {
        let r = p.wait();
        assert_eq!(r.received_invites(), 1, "one INVITE per member: {r:?}");
    }
}

/// CANCEL before the answer (RFC 3261 §9.1), sent by the server: an invitee that rings
/// longer than `--invite-timeout` is cancelled by the spec's 7.9.1.4 rule `ring_too_long`; the
/// invitee's scenario only succeeds when the CANCEL comes and its 487 is ACKed.
// covers: 7.9.1.4/ring_too_long
// covers: 7.9.1.4/cancelled
#[test]
fn server_cancels_an_invitee_that_rings_too_long() {
    let (uas, uris) = invitees(&["uas_ring_cancel", "uas_answer"]);
    let mut members = uris.clone();
    members.push(ALICE.to_owned());
    let groups = group_folder(GROUP, &members);
    let s = Server::start(&[
        "--groups",
        groups.path().to_str().unwrap(),
        "--invite-timeout",
        "1s",
    ]);
    let run = uac("invite_pager", &s, GROUP).run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    for p in uas {
        let r = p.wait();
        assert!(r.success(), "invitee: {r:?}\n{}", s.log());
        assert_eq!(r.received_invites(), 1, "{r:?}");
    }
}

// covers: 5.2.1.1/adhoc
// covers: 7.9.1.4/setup
#[test]
fn resource_list_invite_reaches_both_invitees() {
    let (uas, uris) = invitees(&["uas_answer", "uas_answer"]);
    let s = Server::start(&[]);
    let run = uac(
        "invite_resource_list",
        &s,
        "sip:conference-factory@example.com",
    )
    .key("invitee1", &uris[0])
    .key("invitee2", &uris[1])
    .run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    for p in uas {
        let r = p.wait();
        assert!(r.success(), "invitee: {r:?}\n{}", s.log());
        assert_eq!(r.received_invites(), 1, "{r:?}");
        // RFC 5364 §7: invitees see who else was invited.
        assert!(r.messages.contains("recipient-list-history"), "{r:?}");
    }
}

// covers: 7.9.1.4/declined
#[test]
fn busy_invitee_fails_its_leg_only() {
    let (uas, uris) = invitees(&["uas_answer", "uas_busy"]);
    let s = Server::start(&[]);
    // RFC 5366 §5: the originator's answer does not wait for (or depend on) invitees.
    let run = uac(
        "invite_resource_list",
        &s,
        "sip:conference-factory@example.com",
    )
    .key("invitee1", &uris[0])
    .key("invitee2", &uris[1])
    .run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    for p in uas {
        let r = p.wait();
        assert!(r.success(), "invitee: {r:?}\n{}", s.log());
    }
}

/// The same group INVITE/200/ACK/BYE over TCP: responses and the server's BYE travel on the
/// originator's connection.
#[test]
fn pager_invite_over_tcp_reaches_every_member() {
    let (uas, uris) = invitees(&["uas_answer", "uas_answer"]);
    let mut members = uris.clone();
    members.push(ALICE.to_owned());
    let groups = group_folder(GROUP, &members);
    let s = Server::start(&["--groups", groups.path().to_str().unwrap()]);
    let run = uac("invite_pager", &s, GROUP).tcp().run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    for p in uas {
        let r = p.wait();
        assert!(r.success(), "invitee: {r:?}\n{}", s.log());
        assert_eq!(r.received_invites(), 1, "{r:?}");
    }
}
