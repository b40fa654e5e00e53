"""Train the bundled demo model on scenes coreseg draws itself, and export it
to ONNX and Core ML (src/python/coreseg/models/demo.onnx, demo.mlpackage).

    pip install torch==2.13.0 onnx onnxscript coremltools && pip install .
    python tools/train_demo_model.py [--steps 1000] [--seed 0]

Seeded and deterministic on the CPU (up to thread scheduling). About six
minutes on 2 CPU cores, half of it drawing scenes; held-out mIoU 0.95 with
the defaults. Training uses scene seeds below coreseg.demo.TRAINING_SEEDS;
the demo and the reported mIoU use seeds above.

The network is a small U-Net (three strided stages, two skip connections,
~150k parameters). Both exports contain the same weights:
- ONNX: input "image" uint8 [1, H, W, 3] RGB (what resize_image writes, so
  no conversion), output "logits" float32 [1, C, H, W], reduced by
  coreseg's native argmax kernel;
- Core ML (ML program, float16): image input "image" (RGB), output
  "logits" float16 [1, C, H, W]: the ONNX model's twin, so scores and
  everything built on them behave the same on both backends; the labels
  and colours in the preview metadata, as Apple's DETR model has them.
Both state their output activation (coreseg.output.activation = logits).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import coreseg
from coreseg import demo

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "src/python/coreseg/models"
W, H = demo.INPUT_SIZE
C = len(demo.CLASSES)
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255


def block(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class TinyUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.down1 = nn.Sequential(block(3, 16, 2), block(16, 16))  # 1/2
        self.down2 = nn.Sequential(block(16, 32, 2), block(32, 32))  # 1/4
        self.down3 = nn.Sequential(block(32, 64, 2), block(64, 64), block(64, 64))  # 1/8
        self.up2 = block(64 + 32, 32)
        self.up1 = block(32 + 16, 24)
        self.head = nn.Conv2d(24, C, 1)

    def forward(self, x):  # x: float NCHW, pixel values 0..255
        x = (x - MEAN) / STD
        d1 = self.down1(x)
        d2 = self.down2(d1)
        d3 = self.down3(d2)
        u2 = self.up2(torch.cat([F.interpolate(d3, scale_factor=2.0, mode="bilinear", align_corners=False), d2], 1))
        u1 = self.up1(torch.cat([F.interpolate(u2, scale_factor=2.0, mode="bilinear", align_corners=False), d1], 1))
        return F.interpolate(self.head(u1), scale_factor=2.0, mode="bilinear", align_corners=False)


class OnnxWrapper(nn.Module):
    """uint8 NHWC RGB in, logits out."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image):
        return self.net(image.permute(0, 3, 1, 2).float())


class CoreMLWrapper(nn.Module):
    """Core ML image (float NCHW 0..255) in, logits out."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image):
        return self.net(image)


# Scenes are drawn at several sizes and brought to the model's input with
# the same resize_image call coreseg makes at inference, so the network sees
# what it will be fed (textures and noise change with the drawing size).
SCENE_SIZES = [(256, 192), (400, 300), (640, 480), (800, 600)]


def make_scenes(seeds):
    images, labels = [], []
    for s in seeds:
        image, label = demo.scene(int(s), SCENE_SIZES[int(s) % len(SCENE_SIZES)])
        images.append(coreseg.resize_image(image, demo.INPUT_SIZE, "RGB"))
        labels.append(coreseg.resize_labels(label, demo.INPUT_SIZE))
    return np.stack(images), np.stack(labels)


def miou(pred, gt):
    cm = np.bincount(gt.ravel() * C + pred.ravel(), minlength=C * C).reshape(C, C)
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union
    return float(np.nanmean(iou)), iou


def evaluate(net, seeds, size):
    """mIoU of the full pipeline at `size`: resize in, predict, labels
    mapped back to the scene's own resolution, against its exact map."""
    net.eval()
    preds, truths = [], []
    with torch.no_grad():
        for s in seeds:
            image, truth = demo.scene(int(s), size)
            x = torch.from_numpy(coreseg.resize_image(image, demo.INPUT_SIZE, "RGB")).permute(2, 0, 1)[None]
            pred = net(x.float()).argmax(1)[0].numpy().astype(np.int32)
            preds.append(coreseg.resize_labels(pred, size))
            truths.append(truth)
    return miou(np.stack(preds), np.stack(truths))


def train(args):
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    torch.set_num_threads(os.cpu_count() or 1)
    net = TinyUNet()
    print(f"parameters: {sum(p.numel() for p in net.parameters())}")
    pool_seeds = rng.choice(demo.TRAINING_SEEDS, size=args.pool, replace=False)
    t0 = time.time()
    images, labels = make_scenes(pool_seeds)
    print(f"drew {len(images)} training scenes in {time.time() - t0:.0f}s")
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    y_all = torch.from_numpy(labels).long()
    # Rare classes (sun) weigh more, so they are not ignored.
    freq = np.bincount(labels.ravel(), minlength=C) / labels.size
    weight = torch.tensor(1.0 / np.sqrt(freq + 1e-3), dtype=torch.float32)
    weight /= weight.mean()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps)
    net.train()
    t0 = time.time()
    for step in range(args.steps):
        idx = torch.from_numpy(rng.integers(0, len(images), args.batch))
        x, y = x_all[idx], y_all[idx]
        if rng.random() < 0.5:  # mirror
            x, y = x.flip(3), y.flip(2)
        # Brightness and colour-cast jitter on top of the scenes' own.
        x = (x * torch.empty(len(x), 3, 1, 1).uniform_(0.8, 1.2)).clamp(0, 255)
        loss = F.cross_entropy(net(x), y, weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {loss.item():.3f}  {time.time() - t0:.0f}s", flush=True)
    return net


def export(net, outdir: Path):
    net.eval()
    outdir.mkdir(parents=True, exist_ok=True)
    params = {"labels": demo.CLASSES, "colors": demo.COLORS}

    # ONNX: uint8 NHWC in, logits out, labels in metadata_props.
    import onnx

    onnx_path = outdir / "demo.onnx"
    dummy = torch.zeros(1, H, W, 3, dtype=torch.uint8)
    torch.onnx.export(OnnxWrapper(net), (dummy,), str(onnx_path), input_names=["image"],
                      output_names=["logits"], opset_version=17, dynamo=False)
    model = onnx.load(str(onnx_path))
    for key, value in {
        "com.apple.coreml.model.preview.type": "imageSegmenter",
        "com.apple.coreml.model.preview.params": json.dumps(params),
        "coreseg.input.color_layout": "RGB",
        "coreseg.output.activation": "logits",
    }.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.doc_string = "coreseg demo: a tiny U-Net for procedurally drawn outdoor scenes"
    onnx.save(model, str(onnx_path))

    # Core ML: image in, float16 logits out (the ONNX model's twin), float16 weights.
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    import coremltools as ct

    traced = torch.jit.trace(CoreMLWrapper(net), torch.zeros(1, 3, H, W))
    mlmodel = ct.convert(traced, inputs=[ct.ImageType(name="image", shape=(1, 3, H, W),
                                                      color_layout=ct.colorlayout.RGB)],
                         outputs=[ct.TensorType(name="logits", dtype=np.float16)],
                         convert_to="mlprogram", minimum_deployment_target=ct.target.macOS13,
                         compute_precision=ct.precision.FLOAT16)
    mlmodel.author = "coreseg"
    mlmodel.license = "MIT"
    mlmodel.version = coreseg.__version__
    mlmodel.short_description = "coreseg demo: a tiny U-Net for procedurally drawn outdoor scenes"
    mlmodel.user_defined_metadata["com.apple.coreml.model.preview.type"] = "imageSegmenter"
    mlmodel.user_defined_metadata["com.apple.coreml.model.preview.params"] = json.dumps(params)
    mlmodel.user_defined_metadata["coreseg.output.activation"] = "logits"
    ml_path = outdir / "demo.mlpackage"
    if ml_path.exists():
        shutil.rmtree(ml_path)
    mlmodel.save(str(ml_path))
    for p in (onnx_path, ml_path):
        size = sum(f.stat().st_size for f in p.rglob("*")) if p.is_dir() else p.stat().st_size
        print(f"wrote {p} ({size / 1e6:.2f} MB)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--pool", type=int, default=2000, help="training scenes drawn up front")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=MODELS)
    args = parser.parse_args(argv)
    net = train(args)
    held_out = range(demo.TRAINING_SEEDS, demo.TRAINING_SEEDS + 200)
    for size in [(256, 192), (640, 480)]:
        score, per_class = evaluate(net, held_out, size)
        print(f"mIoU on 200 held-out scenes at {size[0]}x{size[1]}: {score:.3f}")
        print("  " + ", ".join(f"{name} {iou:.3f}" for name, iou in zip(demo.CLASSES, per_class)))
    export(net, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
