//! Loading real checkpoints in every format, and the errors a user gets for bad files.

mod common;

use std::collections::HashMap;
use std::path::Path;

use blindspot::models::{Architecture, LoadOptions, ModelError, load_classifier};
use candle_core::{Device, Tensor};
use common::shared;

fn load(path: &Path) -> Result<blindspot::models::Classifier, ModelError> {
    load_classifier(path, &LoadOptions::default())
}

fn cifar_batch() -> Tensor {
    let t = candle_core::safetensors::load(
        shared("data/cifar10_test_exact1017.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    (t["images"]
        .narrow(0, 0, 8)
        .unwrap()
        .permute((0, 3, 1, 2))
        .unwrap()
        .to_dtype(candle_core::DType::F32)
        .unwrap()
        / 255.0)
        .unwrap()
}

#[test]
fn legacy_zip_and_safetensors_resnet20_are_identical() {
    let x = cifar_batch();
    let logits: Vec<Vec<Vec<f32>>> = [
        "resnet20-12fca82f.th",
        "resnet20_cifar10_zip.pth",
        "resnet20_cifar10.safetensors",
    ]
    .iter()
    .map(|f| {
        let model = load(&shared(&format!("weights/{f}"))).unwrap();
        assert_eq!(model.spec().architecture, "cifar_resnet20", "{f}");
        assert_eq!(model.spec().class_names[3], "cat");
        model.forward(&x).unwrap().to_vec2::<f32>().unwrap()
    })
    .collect();
    assert_eq!(logits[0], logits[1], "legacy vs zip");
    assert_eq!(logits[0], logits[2], "legacy vs safetensors");
}

#[test]
fn detects_every_shared_architecture() {
    let cases = [
        ("resnet20_cifar10.safetensors", "cifar_resnet20", [32, 32]),
        ("resnet56_cifar10.safetensors", "cifar_resnet56", [32, 32]),
        (
            "efficientnet_lite0.safetensors",
            "efficientnet_lite0",
            [224, 224],
        ),
        ("tv_resnet_basic_1111.safetensors", "resnet10", [224, 224]),
        (
            "tv_resnet_bottleneck_1111.safetensors",
            "resnet14",
            [224, 224],
        ),
        (
            "timm_vit_tiny_depth2.safetensors",
            "vit_p16_d192_l2_h3_64px",
            [64, 64],
        ),
    ];
    for (file, arch, size) in cases {
        let model = load(&shared(&format!("weights/{file}"))).unwrap();
        assert_eq!(model.spec().architecture, arch, "{file}");
        assert_eq!(model.spec().input_size, size, "{file}");
        assert_eq!(model.spec().weights_sha256.len(), 64);
    }
    let eff = load(&shared("weights/efficientnet_lite0.safetensors")).unwrap();
    assert_eq!(eff.spec().class_names[0], "tench");
    assert_eq!(eff.spec().num_classes(), 1000);
}

/// Writes the ResNet-20 tensors, edited by `edit`, to a temporary safetensors file.
fn edited_resnet20(
    dir: &Path,
    edit: impl FnOnce(&mut HashMap<String, Tensor>),
) -> std::path::PathBuf {
    let mut tensors = candle_core::safetensors::load(
        shared("weights/resnet20_cifar10.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    edit(&mut tensors);
    let path = dir.join("edited.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    path
}

#[test]
fn missing_tensor_names_it_with_expected_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited_resnet20(dir.path(), |t| {
        t.remove("layer2.1.conv1.weight");
    });
    let err = load(&path).unwrap_err().to_string();
    assert!(err.contains("edited.safetensors"), "{err}");
    assert!(
        err.contains("layer2.1.conv1.weight") && err.contains("[32, 32, 3, 3]"),
        "{err}"
    );
}

#[test]
fn wrong_shape_names_tensor_and_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited_resnet20(dir.path(), |t| {
        t.insert(
            "layer1.0.bn1.running_var".into(),
            Tensor::ones(15, candle_core::DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let err = load(&path).unwrap_err().to_string();
    assert!(
        err.contains("edited.safetensors") && err.contains("layer1.0.bn1.running_var"),
        "{err}"
    );
    assert!(err.contains("[15]") && err.contains("[16]"), "{err}");
}

#[test]
fn unknown_layout_and_wrong_arch_override_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.safetensors");
    let t: HashMap<String, Tensor> = [(
        "encoder.w".to_string(),
        Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu).unwrap(),
    )]
    .into();
    candle_core::safetensors::save(&t, &path).unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert!(
        err.contains("odd.safetensors") && err.contains("--arch") && err.contains("encoder.w"),
        "{err}"
    );

    let opts = LoadOptions {
        architecture: Some(Architecture::Vit),
        ..LoadOptions::default()
    };
    let err = load_classifier(&shared("weights/resnet20_cifar10.safetensors"), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("resnet20_cifar10.safetensors") && err.contains("patch_embed.proj.weight"),
        "{err}"
    );
}

#[test]
fn empty_truncated_and_non_checkpoint_files_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read(shared("weights/resnet20_cifar10.safetensors")).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty.safetensors", Vec::new()),
        (
            "truncated.safetensors",
            original[..original.len() / 2].to_vec(),
        ),
        ("header_only.safetensors", original[..64].to_vec()),
        ("notes.pth", b"these are not weights\n".to_vec()),
        (
            "picture.pth",
            std::fs::read(shared("data/cifar10_test_png/cat/0000.png")).unwrap(),
        ),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains(name), "{name}: {err}");
        assert!(
            err.len() > name.len() + 20,
            "{name}: the error should say what is wrong: {err}"
        );
    }
    let missing = dir.path().join("nope.safetensors");
    let err = load(&missing).unwrap_err().to_string();
    assert!(err.contains("nope.safetensors"), "{err}");
}

#[test]
fn sidecar_sets_normalisation_size_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("net.safetensors");
    std::fs::copy(shared("weights/resnet20_cifar10.safetensors"), &weights).unwrap();
    let names: Vec<String> = (0..10).map(|i| format!("thing{i}")).collect();
    let sidecar = serde_json::json!({"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "input_size": [40, 40], "class_names": names});
    std::fs::write(dir.path().join("net.safetensors.json"), sidecar.to_string()).unwrap();
    let model = load(&weights).unwrap();
    assert_eq!(model.spec().normalization.mean, vec![0.5; 3]);
    assert_eq!(model.spec().input_size, [40, 40]);
    assert_eq!(model.spec().class_name(9), "thing9");
    assert!(
        model
            .spec()
            .provenance
            .normalization
            .contains("net.safetensors.json")
    );

    std::fs::write(
        dir.path().join("net.safetensors.json"),
        r#"{"mean": [0.5], "colour": 1}"#,
    )
    .unwrap();
    let err = load(&weights).unwrap_err().to_string();
    assert!(
        err.contains("net.safetensors") && err.contains("colour"),
        "{err}"
    );
}
