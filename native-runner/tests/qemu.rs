//! `pmemlab qemu` on real backing files on a disk file system: a monitor
//! session through a pipe, and the command-line mistakes.

mod common;

use common::{assert_user_error, cleanup, disk_dir, pmemlab, stderr, stdout};

const OBJ1: &str = "memory-backend-file,id=mem1,share=on,mem-path=./virtio_pmem.img,size=1M";
const DEV1: &str = "virtio-pmem-pci,memdev=mem1,id=nv1";
/// The seed's `-m`: without `maxmem` QEMU refuses every virtio-pmem device.
const MEM: &str = "512M,slots=2,maxmem=2G";

#[test]
fn a_monitor_session_writes_fsyncs_reads_back_and_the_file_holds_the_bytes() {
    let dir = disk_dir("session");
    let script = "\
info memory-devices
write nv1 4096 hello, durable world
fsync nv1
read nv1 4096 20
write nv1 0x10 hex:deadbeef
msync nv1
info pmem nv1
quit
";
    let o = pmemlab(&dir, &["qemu", "-m", MEM, "-object", OBJ1, "-device", DEV1], script);
    let out = stdout(&o);
    assert!(o.status.success(), "{}{}", out, stderr(&o));
    assert!(out.contains("Memory device [virtio-pmem]: \"nv1\"\n  memaddr: 0x"), "{out}");
    assert!(out.contains("  size: 1048576\n  memdev: /objects/mem1"), "{out}");
    assert!(out.contains("fsync nv1: ok (the device answered 0; host fdatasync of ./virtio_pmem.img took"), "{out}");
    assert!(out.contains("msync nv1: ok"), "{out}");
    // The round trip went through the virtqueue.
    assert!(out.contains("[nv1] device pops chain 0") && out.contains("flush #0 returns 0"), "{out}");
    assert!(out.contains("nv1 0x1000+20: \"hello, durable world\""), "{out}");
    assert!(out.contains("flushes ok 2"), "{out}");
    assert!(out.contains("(kernel cachestat):") && out.contains(" 0 dirty"), "{out}");
    assert!(!out.contains("Error"), "{out}");
    let img = std::fs::read(dir.join("virtio_pmem.img")).unwrap();
    assert_eq!(img.len(), 1 << 20);
    assert_eq!(&img[4096..4116], b"hello, durable world");
    assert_eq!(&img[0x10..0x14], &[0xde, 0xad, 0xbe, 0xef]);
    assert!(img[..0x10].iter().all(|&b| b == 0));
    assert!(stderr(&o).contains("created ./virtio_pmem.img"), "{}", stderr(&o));
    cleanup(&dir);
}

#[test]
fn share_off_stores_never_reach_the_file_even_after_fsync() {
    let dir = disk_dir("private");
    let before: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(dir.join("p.img"), &before).unwrap();
    let obj = "memory-backend-file,id=m,share=off,mem-path=p.img,size=8K";
    let o = pmemlab(
        &dir,
        &["qemu", "-m", MEM, "-object", obj, "-device", "virtio-pmem-pci,memdev=m,id=nv1"],
        "write nv1 0 lost\nfsync nv1\nread nv1 0 4\n",
    );
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("fsync nv1: ok"), "{out}");
    assert!(out.contains("nothing reached p.img"), "{out}");
    assert!(out.contains("nv1 0x0+4: \"lost\""), "the guest sees its own store: {out}");
    assert_eq!(std::fs::read(dir.join("p.img")).unwrap(), before);
    assert!(stderr(&o).contains("share=off"), "{}", stderr(&o));
    cleanup(&dir);
}

#[test]
fn hotplug_works_and_unplug_is_refused_with_qemus_message() {
    let dir = disk_dir("hotplug");
    let script = "\
object_add memory-backend-file,id=mem2,share=on,mem-path=virtio_pmem2.img,size=64K
device_add virtio-pmem-pci,id=virtio_pmem2,memdev=mem2
device_del virtio_pmem2
device_del nv1
write virtio_pmem2 8K second
fsync virtio_pmem2
info memory-devices
object_del mem2
device_add virtio-pmem-pci,id=nv3,memdev=mem2
bogus command
read nv1 0 99999999999
quit
";
    let o = pmemlab(&dir, &["qemu", "-m", MEM, "-object", OBJ1, "-device", DEV1], script);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("virtio_pmem2: virtio-pmem-pci plugged at 0x"), "{out}");
    let refusals = out.matches("Error: device '").count();
    assert_eq!(refusals, 2, "{out}");
    assert!(out.contains("cannot be removed: virtio-pmem does not support hot-unplug"), "{out}");
    assert!(out.contains("virtio based memory devices cannot be unplugged"), "{out}");
    // Still plugged after the refusal.
    assert!(out.contains("Memory device [virtio-pmem]: \"virtio_pmem2\""), "{out}");
    assert!(out.contains("fsync virtio_pmem2: ok"), "{out}");
    assert!(out.contains("Error: object 'mem2' is in use, can not be deleted"), "{out}");
    assert!(out.contains("Error: can't use already busy memdev: mem2"), "{out}");
    assert!(out.contains("Error: unknown command 'bogus'"), "{out}");
    assert!(out.contains("Error: LEN "), "{out}");
    assert_eq!(&std::fs::read(dir.join("virtio_pmem2.img")).unwrap()[8192..8198], b"second");
    cleanup(&dir);
}

#[test]
fn map_sync_and_ndctl_are_refused_with_the_reason() {
    let dir = disk_dir("refusals");
    let o = pmemlab(
        &dir,
        &["qemu", "-m", MEM, "-object", OBJ1, "-device", DEV1],
        "mmap nv1 MAP_SHARED_VALIDATE|MAP_SYNC\nmmap nv1 MAP_SHARED\nndctl create-namespace -m fsdax\nquit\n",
    );
    let out = stdout(&o);
    assert!(out.contains("Error: mmap nv1 MAP_SHARED_VALIDATE|MAP_SYNC: EOPNOTSUPP"), "{out}");
    assert!(out.contains("use fsync or msync"), "{out}");
    assert!(out.contains("mmap nv1: ok"), "{out}");
    assert!(out.contains("Error: ndctl: not supported on virtio-pmem") && out.contains("regions/namespaces"), "{out}");
    cleanup(&dir);
}

#[test]
fn an_existing_file_of_another_size_is_refused_and_left_untouched() {
    let dir = disk_dir("wrongsize");
    let content: Vec<u8> = (0..12_288u32).map(|i| (i % 241) as u8).collect();
    let path = dir.join("virtio_pmem.img");
    std::fs::write(&path, &content).unwrap();
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let o = pmemlab(&dir, &["qemu", "-m", MEM, "-object", OBJ1, "-device", DEV1], "write nv1 0 x\nfsync nv1\n");
    assert_user_error(&o, "the existing file is 12288 bytes but size 1048576 was asked");
    assert!(stderr(&o).contains("resize=on"));
    assert!(stdout(&o).is_empty(), "no monitor may start: {}", stdout(&o));
    assert_eq!(std::fs::read(&path).unwrap(), content);
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    // With resize=on it is grown, and its content kept.
    let obj = format!("{OBJ1},resize=on");
    let o = pmemlab(&dir, &["qemu", "-m", MEM, "-object", &obj, "-device", DEV1], "quit\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let now = std::fs::read(&path).unwrap();
    assert_eq!(now.len(), 1 << 20);
    assert_eq!(&now[..12_288], &content[..]);
    cleanup(&dir);
}

#[test]
fn command_line_mistakes_are_one_line_and_exit_2() {
    let dir = disk_dir("mistakes");
    let obj = |size: &str| format!("memory-backend-file,id=mem1,share=on,mem-path=./x.img,size={size}");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["-object".into(), obj("4Q"), "-device".into(), DEV1.into()], "size='4Q' is not a size"),
        (vec!["-object".into(), obj("4GiB")], "size='4GiB' is not a size"),
        (vec!["-object".into(), obj("-4G")], "cannot be negative"),
        (vec!["-object".into(), obj("5000")], "not a multiple of 4096"),
        (
            vec!["-object".into(), format!("{},discard-data=on", obj("1M"))],
            "discard-data=on is refused: QEMU throws the file's pages away when it exits",
        ),
        (vec!["-object".into(), format!("{},sharee=on", obj("1M"))], "unknown option 'sharee'"),
        (vec!["-device".into(), "virtio-pmem-pci,id=nv1".into()], "'memdev' is missing"),
        (
            vec!["-object".into(), obj("1M"), "-device".into(), "virtio-pmem-pci,memdev=mem9,id=nv1".into()],
            "memdev 'mem9' is not defined",
        ),
        (vec!["-object".into(), obj("1M"), "-object".into(), obj("1M")], "duplicate object id 'mem1'"),
        (
            vec!["-object".into(), obj("1M"), "-device".into(), DEV1.into(), "-device".into(), DEV1.into()],
            "Duplicate device ID 'nv1'",
        ),
        (
            vec!["-object".into(), "memory-backend-file,id=m,mem-path=no/dir/x.img,size=4K".into()],
            "directory no/dir does not exist",
        ),
        (vec!["-incoming".into(), "tcp:0:4444".into()], "option '-incoming' is refused"),
        (vec!["-m".into(), "512M,slots=2".into()], "slots specified but no max-size"),
        (
            vec!["-object".into(), obj("1M"), "-device".into(), DEV1.into()],
            "memory devices (e.g. for memory hotplug) are not enabled, please specify the maxmem option",
        ),
        (
            vec!["-m".into(), "512M,maxmem=516M".into(), "-object".into(), obj("8M"), "-device".into(), DEV1.into()],
            "not enough space, currently 0x0 in use of total space for memory devices 0x400000",
        ),
        (
            vec![
                "-m".into(),
                MEM.into(),
                "-object".into(),
                obj("1M"),
                "-device".into(),
                format!("{DEV1},memaddr=0x80000000"),
            ],
            "can't add memory device [0x80000000:0x100000], usable range for memory devices [0x100000000:0xe0000000]",
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["qemu"];
        all.extend(args.iter().map(String::as_str));
        let o = pmemlab(&dir, &all, "quit\n");
        assert_user_error(&o, want);
    }
    // Nothing was created by any of them.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    cleanup(&dir);
}

#[test]
fn a_failed_second_backend_removes_the_file_the_first_created() {
    let dir = disk_dir("rollback");
    let o = pmemlab(
        &dir,
        &[
            "qemu",
            "-object",
            "memory-backend-file,id=a,share=on,mem-path=a.img,size=64K",
            "-object",
            "memory-backend-file,id=b,share=on,mem-path=missing/b.img,size=64K",
        ],
        "quit\n",
    );
    assert_user_error(&o, "memory-backend-file 'b': missing/b.img: directory missing does not exist");
    assert!(!dir.join("a.img").exists(), "a.img was created by this run and must be removed");
    cleanup(&dir);
}

#[test]
fn devices_are_placed_where_qemu_places_them() {
    let dir = disk_dir("placement");
    let script = "\
object_add memory-backend-file,id=mem2,share=on,mem-path=b.img,size=64K
device_add virtio-pmem-pci,id=nv2,memdev=mem2,memaddr=0x100010000
device_add virtio-pmem-pci,id=nv2,memdev=mem2
info memory-devices
quit
";
    let o = pmemlab(&dir, &["qemu", "-m", MEM, "-object", OBJ1, "-device", DEV1], script);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    // QMP query-memory-devices of QEMU 7.2 with -m 512M,slots=2,maxmem=2G:
    // the first device at 4 GiB, the next one right after it.
    assert!(out.contains("\"nv1\"\n  memaddr: 0x100000000\n"), "{out}");
    assert!(out.contains("Error: address range conflicts with memory device id='nv1'"), "{out}");
    assert!(out.contains("nv2: virtio-pmem-pci plugged at 0x100100000"), "{out}");
    cleanup(&dir);
}

#[test]
fn a_whole_real_command_line_is_taken_with_a_note_per_option_not_modelled() {
    let dir = disk_dir("wholeline");
    // The seed's command line as REAL-QEMU.md boots it, with the usual rest.
    let line = "-machine pc,accel=kvm -enable-kvm -accel tcg -smp 2 -m 512M,slots=2,maxmem=2G \
        -nographic -no-reboot -serial mon:stdio -kernel vmlinux -initrd initrd.cpio \
        -append console=ttyS0 -drive file=disk.img,if=virtio,format=raw -netdev user,id=n0 \
        -device virtio-net-pci,netdev=n0 -object memory-backend-ram,id=ram0,size=512M \
        -object memory-backend-file,id=mem1,share=on,mem-path=./virtio_pmem.img,size=1M,prealloc=on \
        -device virtio-pmem-pci,memdev=mem1,id=nv1";
    let mut args = vec!["qemu"];
    args.extend(line.split_whitespace());
    let o = pmemlab(&dir, &args, "write nv1 0 hello\nfsync nv1\nquit\n");
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("fsync nv1: ok"), "{out}");
    let notes: Vec<&str> = err.lines().filter(|l| l.starts_with("pmemlab: note: -")).collect();
    for want in [
        "-machine accel=kvm",
        "-enable-kvm",
        "-accel tcg",
        "-smp 2",
        "-nographic",
        "-no-reboot",
        "-serial",
        "-kernel",
        "-initrd",
        "-append",
        "-drive",
        "-netdev",
        "-device virtio-net-pci",
        "-object memory-backend-ram",
    ] {
        assert_eq!(notes.iter().filter(|n| n.contains(want)).count(), 1, "{want}: {err}");
    }
    assert!(err.contains("prealloc=on is not modelled"), "{err}");
    assert_eq!(&std::fs::read(dir.join("virtio_pmem.img")).unwrap()[..5], b"hello");
    cleanup(&dir);
}

#[test]
fn readonly_stores_are_dropped_as_qemu_drops_them_and_the_file_is_untouched() {
    let dir = disk_dir("readonly");
    let before: Vec<u8> = (0..8192u32).map(|i| (i * 5 % 251) as u8).collect();
    std::fs::write(dir.join("ro.img"), &before).unwrap();
    let obj = "memory-backend-file,id=m,share=on,readonly=on,mem-path=ro.img,size=8K";
    let o = pmemlab(
        &dir,
        &["qemu", "-m", MEM, "-object", obj, "-device", "virtio-pmem-pci,memdev=m,id=nv1"],
        "write nv1 0 lost\nread nv1 0 4\nfsync nv1\n",
    );
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("nv1: store of 4 bytes at 0x0 dropped: the backend is readonly=on"), "{out}");
    assert!(out.contains(r#"nv1 0x0+4: "\x00\x05\n\x0f""#), "the guest reads the file's bytes back: {out}");
    assert!(out.contains("fsync nv1: ok"), "{out}");
    assert_eq!(std::fs::read(dir.join("ro.img")).unwrap(), before);
    cleanup(&dir);
}

#[test]
fn q35_moves_the_device_memory_and_a_hotplug_past_maxmem_is_refused_with_qemus_message() {
    let dir = disk_dir("q35");
    let script = "\
info memory-devices
object_add memory-backend-file,id=mem2,share=on,mem-path=b.img,size=2M
device_add virtio-pmem-pci,id=nv2,memdev=mem2
device_add virtio-pmem-pci,id=nv2,memdev=mem2,bus=rp1
";
    let args = [
        "qemu",
        "-machine",
        "q35",
        "-m",
        "3G,slots=1,maxmem=3074M",
        "-device",
        "pcie-root-port,id=rp1,slot=1",
        "-object",
        OBJ1,
        "-device",
        DEV1,
    ];
    let o = pmemlab(&dir, &args, script);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    // q35 puts 2 GiB of the 3 GiB below 4 GiB: the region starts at 5 GiB.
    assert!(out.contains("\"nv1\"\n  memaddr: 0x140000000\n"), "{out}");
    // Measured on QEMU 7.2.22 over QMP: q35's root bus takes no hot-plug;
    // into a root port, the device does not fit.
    assert!(out.contains("Error: Bus 'pcie.0' does not support hotplugging"), "{out}");
    assert!(
        out.contains("Error: not enough space, currently 0x100000 in use of total space for memory devices 0x200000"),
        "{out}"
    );
    cleanup(&dir);
}
