//! Shared test helpers: paths into ../shared (read in place, never copied).
#![allow(dead_code)]

use std::path::PathBuf;

#[cfg(feature = "app")]
pub mod app;
pub mod folders;

pub fn shared(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")).join(rel)
}

/// The device the model tests run their models on: `BLINDSPOT_TEST_DEVICE` (`cpu`, the
/// default, or `cuda`; `benches/gpu_check.sh` sets it). Inputs go to it and results come back
/// to the CPU for comparison, so the same goldens and tolerances check both.
pub fn test_device() -> candle_core::Device {
    match std::env::var("BLINDSPOT_TEST_DEVICE").as_deref() {
        Err(_) | Ok("") | Ok("cpu") => candle_core::Device::Cpu,
        Ok("cuda") => candle_core::Device::new_cuda(0).unwrap_or_else(|e| {
            panic!("BLINDSPOT_TEST_DEVICE=cuda: no CUDA device 0 ({e}); build with --features cuda")
        }),
        Ok(other) => panic!("BLINDSPOT_TEST_DEVICE={other}: expected cpu or cuda"),
    }
}

/// A path as a command-line argument.
pub fn arg(p: &std::path::Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// ../shared's akamaster ResNet-20 (CIFAR-10), as a command-line argument.
pub fn resnet20() -> String {
    shared("weights/resnet20_cifar10.safetensors")
        .display()
        .to_string()
}

/// ../shared's CIFAR-10 test PNGs (ImageFolder), as a command-line argument.
pub fn cifar_png() -> String {
    shared("data/cifar10_test_png").display().to_string()
}

pub fn max_abs(t: &candle_core::Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

pub fn max_abs_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shape mismatch");
    max_abs(
        &(a.to_dtype(candle_core::DType::F32).unwrap()
            - b.to_dtype(candle_core::DType::F32).unwrap())
        .unwrap(),
    )
}

/// Runs the `blindspot` binary: (success, stdout, stderr).
pub fn blindspot(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_blindspot"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Writes ResNet-20 cut down to one class (the first row of its classifier) into `dir`: a
/// model that every analysis needing two classes must refuse.
pub fn one_class_resnet20(dir: &std::path::Path) -> PathBuf {
    let mut tensors: std::collections::HashMap<String, candle_core::Tensor> =
        candle_core::safetensors::load(
            shared("weights/resnet20_cifar10.safetensors"),
            &candle_core::Device::Cpu,
        )
        .unwrap();
    for name in ["linear.weight", "linear.bias"] {
        let t = tensors[name].narrow(0, 0, 1).unwrap().contiguous().unwrap();
        tensors.insert(name.into(), t);
    }
    let path = dir.join("one_class.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    path
}

/// The synthetic shapes data set (`demo-data --count N --seed 7`) in `dir/shapes`.
pub fn demo_set(dir: &std::path::Path, count: usize) -> PathBuf {
    let out = dir.join("shapes");
    let (ok, _, stderr) = blindspot(&[
        "demo-data",
        "--out",
        arg(&out),
        "--count",
        &count.to_string(),
        "--seed",
        "7",
    ]);
    assert!(ok, "{stderr}");
    out
}

/// Runs the `blindspot` binary to its end and requires success.
pub fn run_to_end(args: &[String]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_blindspot"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends SIGINT (Ctrl-C) to a spawned run and waits for it: its exit code and stderr.
pub fn ctrl_c(child: std::process::Child) -> (Option<i32>, String) {
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Starts the `blindspot` binary (stdout dropped, stderr kept) to stop or kill it.
pub fn spawn(args: &[String]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_blindspot"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}
