//! Boot the "bootable slice" in QEMU: PID 1, service ordering, restarts and
//! crash loops, zombie reaping, shutdown order, watchdog, initctl, modules.
use azl_e2e::*;
use std::time::Duration;

/// Services a → b → c (c signals readiness through its notify fd, late),
/// d after c; then power off.
fn ordered_image(kernel: Kernel) -> Image {
    Image::new("order", kernel)
        .sh_service(
            "svc-a",
            "echo a-up; exec sleep 1000",
            "restart = \"always\"",
        )
        .sh_service("svc-b", "echo b-up; exec sleep 1000", "after = [\"svc-a\"]")
        .sh_service(
            "svc-c",
            "sleep 1; echo c-ready-now; echo READY >&$NOTIFY_FD; exec sleep 1000",
            "after = [\"svc-b\"]\nready = \"notify\"",
        )
        .sh_service("svc-d", "echo d-up; exec sleep 1000", "after = [\"svc-c\"]")
        .finisher(
            &["svc-d"],
            "echo hostname=$(hostname); echo pid1=$(cat /proc/1/comm)",
        )
}

fn check_ordered_boot(kernel: Kernel) {
    let dir = tempdir();
    let out = ordered_image(kernel).build(dir.path());
    let b = boot(&out, &Boot::default());
    b.assert_order(&[
        "started svc-a",
        "started svc-b",
        "c-ready-now",
        "svc-c is ready",
        "started svc-d",
        "started finish",
        "ready: 5 services up",
    ]);
    assert_eq!(b.value("hostname"), "testhost");
    assert_eq!(b.value("pid1"), "init");
    // Nothing may start svc-d before svc-c signalled readiness.
    assert!(b.line("started svc-d") > b.line("svc-c is ready"));
    b.assert_clean_poweroff();
}

#[test]
fn boots_in_after_order_and_powers_off_small_kernel() {
    check_ordered_boot(Kernel::Small);
}

#[test]
fn boots_in_after_order_and_powers_off_debian_kernel() {
    check_ordered_boot(Kernel::Debian);
}

#[test]
fn crashing_service_backs_off_then_gives_up() {
    let dir = tempdir();
    let out = Image::new("crash", Kernel::Small)
        .sh_service(
            "crasher",
            "echo crashing; exit 3",
            "restart = \"always\"\nrestart_delay_ms = 200\nrestart_delay_max_ms = 1000\n\
             crash_loop = { max_restarts = 5, window_s = 60, action = \"give-up\" }",
        )
        .sh_service(
            "watcher",
            "sleep 6; /sbin/initctl status; /sbin/initctl poweroff",
            "restart = \"never\"",
        )
        .build(dir.path());
    let b = boot(&out, &Boot::default());
    // Growing delays, capped at the maximum.
    b.assert_order(&[
        "crasher: restarting in 200 ms",
        "crasher: restarting in 400 ms",
        "crasher: restarting in 800 ms",
        "crasher: restarting in 1000 ms",
        "crash loop (more than 5 restarts in 60 s): giving up",
    ]);
    assert_eq!(b.count("crasher exited: exit code 3"), 6, "{}", b.dump());
    assert_eq!(b.count("started crasher"), 6);
    // initctl status shows it failed.
    let status = b.line("SERVICE");
    let row = b
        .serial
        .lines()
        .skip(status)
        .find(|l| l.contains("crasher "))
        .unwrap_or_default();
    assert!(row.contains("failed"), "status row: {row}\n{}", b.dump());
    b.assert_clean_poweroff();
}

#[test]
fn crash_loop_can_escalate_to_reboot() {
    let dir = tempdir();
    let out = Image::new("crashreboot", Kernel::Small)
        .sh_service(
            "crasher",
            "exit 1",
            "restart = \"on-failure\"\nrestart_delay_ms = 100\n\
             crash_loop = { max_restarts = 2, window_s = 60, action = \"reboot\" }",
        )
        .build(dir.path());
    let b = boot(&out, &Boot::default());
    b.assert_order(&[
        "crash loop (more than 2 restarts in 60 s): rebooting",
        "shutdown: reboot",
    ]);
    assert!(!b.has("Power down"));
    // -no-reboot turns the guest's reboot into a clean QEMU exit.
    assert_eq!(b.code, Some(0), "{}", b.dump());
}

#[test]
fn orphans_and_zombies_are_reaped() {
    let dir = tempdir();
    // Each `( sleep 0.2 & )` leaves an orphaned sleep that PID 1 inherits
    // and must reap when it exits.
    let script = "for i in $(seq 1 30); do ( sleep 0.2 & ); ( true & ); done; sleep 2; \
                  z=0; for s in /proc/[0-9]*/status; do grep -q '^State:.*Z' $s 2>/dev/null && z=$((z+1)); done; \
                  echo zombies=$z; echo procs=$(ls -d /proc/[0-9]* | wc -l)";
    let out = Image::new("zombies", Kernel::Small)
        .finisher(&[], script)
        .build(dir.path());
    let b = boot(&out, &Boot::default());
    assert_eq!(b.value("zombies"), "0", "{}", b.dump());
    b.assert_clean_poweroff();
}

#[test]
fn sigterm_stops_services_in_reverse_order_within_grace() {
    let dir = tempdir();
    let trap = |n: &str| {
        format!("trap 'echo {n}-got-term; exit 0' TERM; echo {n}-up; while true; do sleep 1; done")
    };
    let out = Image::new("sigterm", Kernel::Small)
        .sh_service("s1", &trap("s1"), "")
        .sh_service("s2", &trap("s2"), "after = [\"s1\"]")
        .sh_service(
            "stubborn",
            "trap '' TERM; echo stubborn-up; while true; do sleep 1; done",
            "after = [\"s2\"]\nstop_timeout_ms = 1500",
        )
        .sh_service("s3", &trap("s3"), "after = [\"stubborn\"]")
        .sh_service(
            "trigger",
            "sleep 1; echo sending-sigterm; kill -TERM 1; sleep 1000",
            "after = [\"s3\"]\nrestart = \"never\"",
        )
        .build(dir.path());
    let b = boot(&out, &Boot::default());
    b.assert_order(&[
        "sending-sigterm",
        "shutdown: power off requested",
        "stopping trigger",
        "stopping s3",
        "s3-got-term",
        "stopping stubborn",
        "stubborn: did not stop within its grace period, killing",
        "stopping s2",
        "s2-got-term",
        "stopping s1",
        "s1-got-term",
        "shutdown: terminating remaining processes",
    ]);
    // The cooperative services stop without being killed.
    assert_eq!(
        b.count("did not stop within its grace period"),
        1,
        "{}",
        b.dump()
    );
    b.assert_clean_poweroff();
}

#[test]
fn initctl_status_and_restart_against_running_init() {
    let dir = tempdir();
    let out = Image::new("initctl", Kernel::Small)
        .sh_service("worker", "echo worker-start-$$; exec sleep 1000", "")
        .finisher(
            &["worker"],
            "/sbin/initctl status; /sbin/initctl restart worker; echo restart-rc=$?; sleep 1; /sbin/initctl status; \
             /sbin/initctl restart nosuch; echo bad-rc=$?; /sbin/initctl bogus; echo usage-rc=$?; \
             /init ctl version",
        )
        .build(dir.path());
    let b = boot(&out, &Boot::default());
    b.assert_order(&[
        "SERVICE",
        "stopping worker",
        "stopped worker",
        "restarting worker",
    ]);
    assert_eq!(b.count("started worker (pid"), 2, "{}", b.dump());
    assert_eq!(b.count("worker-start-"), 2, "{}", b.dump());
    // The second status shows the new pid, still running.
    let second = b
        .serial
        .lines()
        .filter(|l| l.contains("worker ") && l.contains("running"))
        .count();
    assert_eq!(second, 2, "{}", b.dump());
    assert_eq!(b.value("restart-rc"), "0");
    assert_eq!(b.value("bad-rc"), "1");
    assert_eq!(b.value("usage-rc"), "2");
    b.line("initctl: no service named \"nosuch\"");
    b.line("azl-edge init");
    b.assert_clean_poweroff();
}

#[test]
fn watchdog_resets_the_board_when_init_stops_petting() {
    let dir = tempdir();
    let board = board_variant(dir.path(), &[("timeout_s = 10", "timeout_s = 3")]);
    let out = Image::new("watchdog", Kernel::Small)
        .board_file(board)
        .sh_service(
            "wedger",
            "sleep 2; echo wedging-init; /sbin/initctl watchdog-test",
            "restart = \"never\"",
        )
        .build(dir.path());
    let b = boot(
        &out,
        &Boot {
            timeout: Some(Duration::from_secs(90)),
            ..Boot::default()
        },
    );
    b.line("watchdog /dev/watchdog: armed, timeout 3s");
    b.assert_order(&["wedging-init", "watchdog test: main loop stopped"]);
    // The machine ended by a watchdog reset, not by init.
    assert!(!b.has("shutdown:"), "{}", b.dump());
    assert!(!b.has("Power down"), "{}", b.dump());
    assert_eq!(
        b.code,
        Some(0),
        "QEMU exits on the reset with -no-reboot\n{}",
        b.dump()
    );
}

#[test]
fn debian_modular_kernel_loads_virtio_blk_and_vda_appears() {
    let dir = tempdir();
    let disk = blank_disk(dir.path(), "disk.img", 8);
    let out = Image::new("modules", Kernel::Debian)
        .finisher(&[], "ls -l /dev/vda; test -b /dev/vda && echo vda=present; grep -c . /proc/modules; grep '^virtio_blk' /proc/modules && echo virtio_blk=loaded")
        .build(dir.path());
    let b = boot(
        &out,
        &Boot {
            disks: vec![disk],
            ..Boot::default()
        },
    );
    b.line("modules: ");
    assert!(b.has(", 0 failed"), "{}", b.dump());
    assert_eq!(b.value("vda"), "present");
    assert_eq!(b.value("virtio_blk"), "loaded");
    b.assert_clean_poweroff();
}

#[test]
fn memory_limit_and_cgroup_per_service() {
    let dir = tempdir();
    let out = Image::new("cgroups", Kernel::Small)
        .sh_service("limited", "exec sleep 1000", "memory_max = \"32M\"")
        .finisher(
            &["limited"],
            "echo memmax=$(cat /sys/fs/cgroup/services/limited/memory.max); \
             echo members=$(cat /sys/fs/cgroup/services/limited/cgroup.procs | wc -l)",
        )
        .build(dir.path());
    let b = boot(&out, &Boot::default());
    assert_eq!(b.value("memmax"), (32u64 << 20).to_string());
    assert_eq!(b.value("members"), "1");
    b.assert_clean_poweroff();
}

#[test]
fn fatal_boot_error_enters_emergency_and_reboots_after_board_delay() {
    let dir = tempdir();
    let board = board_variant(
        dir.path(),
        &[
            (
                "device = \"/dev/watchdog\"",
                "device = \"/dev/no-such-watchdog\"",
            ),
            ("required = false", "required = true"),
            (
                "emergency_reboot_delay_s = 10",
                "emergency_reboot_delay_s = 2",
            ),
        ],
    );
    let out = Image::new("emergency", Kernel::Small)
        .board_file(board)
        .sh_service("never", "echo must-not-run", "")
        .build(dir.path());
    let b = boot(&out, &Boot::default());
    b.assert_order(&[
        "EMERGENCY: watchdog /dev/no-such-watchdog: No such file or directory",
        "EMERGENCY: boot cannot continue; rebooting in 2 s",
        "shutdown: reboot",
    ]);
    assert!(!b.has("must-not-run"), "{}", b.dump());
    assert!(!b.has("Kernel panic"), "{}", b.dump());
    assert_eq!(b.code, Some(0), "{}", b.dump());
}

#[test]
fn services_get_their_user_group_env_and_workdir() {
    let dir = tempdir();
    let out = Image::new("creds", Kernel::Small)
        .with("[[user]]\nname = \"app\"\nuid = 1000\ngid = 1000\n")
        .sh_service(
            "app",
            "echo creds=$(id -u):$(id -g) env=$GREETING svc=$SERVICE_NAME pwd=$(pwd) stdin=$(cat); exec sleep 1000",
            "user = \"app\"\nenv = { GREETING = \"hi there\" }\nworkdir = \"/tmp\"",
        )
        .finisher(&["app"], "sleep 0.5")
        .build(dir.path());
    let b = boot(&out, &Boot::default());
    let line = b.value("creds");
    assert_eq!(
        line,
        "1000:1000 env=hi there svc=app pwd=/tmp stdin=",
        "{}",
        b.dump()
    );
    b.assert_clean_poweroff();
}

#[test]
fn sigint_from_ctrl_alt_del_reboots_in_order() {
    let dir = tempdir();
    let out = Image::new("sigint", Kernel::Small)
        .sh_service(
            "svc",
            "trap 'echo svc-got-term; exit 0' TERM; while true; do sleep 1; done",
            "",
        )
        .sh_service(
            "cad",
            "sleep 1; kill -INT 1; sleep 1000",
            "after = [\"svc\"]\nrestart = \"never\"",
        )
        .build(dir.path());
    let b = boot(&out, &Boot::default());
    b.assert_order(&[
        "shutdown: reboot requested; stopping services",
        "stopping cad",
        "stopping svc",
        "svc-got-term",
        "shutdown: terminating remaining processes",
    ]);
    assert!(
        b.serial
            .lines()
            .any(|l| l.ends_with("init: shutdown: reboot")),
        "{}",
        b.dump()
    );
    assert!(!b.has("Power down"), "{}", b.dump());
    assert_eq!(
        b.code,
        Some(0),
        "-no-reboot turns the reboot into a QEMU exit\n{}",
        b.dump()
    );
}
