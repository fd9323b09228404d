"""Training a task network from your own script, with plain ``model.fit``.

    python examples/user_script.py [--data DIR] [--task normals] [--steps 400]

Runtime: about 40 s on a 2-core CPU with the defaults (64 px, small encoder,
batch 32; the embedded data built once before, about a minute). Expected
result: the validation loss ends well below the best constant prediction's
(normals on the embedded data: about 0.7 of it; below 1 = the network
carries information the constant does not), both printed.
"""

from __future__ import annotations

import argparse

import keras

from taskonomy_tf import get_task, make_dataset
from taskonomy_tf.models import build_task_model, compile_task_model
from taskonomy_tf.synth import embedded_dataset
from taskonomy_tf.training.evaluate import constant_loss, fit_constant, mean_loss


def main(argv=None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--data", help="TFRecord folder (default: the embedded dataset)")
    p.add_argument("--task", default="normals")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    a = p.parse_args(argv)
    data = a.data or embedded_dataset()
    spec = get_task(a.task)
    kw = dict(batch_size=a.batch_size, image_size=a.image_size, seed=0)

    train = make_dataset(data, spec, split="train", repeat=True, cache=True, **kw)
    val = make_dataset(data, spec, split="val", shuffle=False, augment=False, cache=True, **kw)
    # the floor: the best constant prediction, fitted on the training split;
    # the network starts from it and learns the residual
    prior, _ = fit_constant(spec, make_dataset(data, spec, split="train", augment=False, **kw))

    model = build_task_model(spec, encoder="small", image_size=a.image_size, prior=prior)
    schedule = keras.optimizers.schedules.CosineDecay(2e-4, a.steps, alpha=0.01,
                                                      warmup_target=2e-3,
                                                      warmup_steps=a.steps // 20)
    compile_task_model(model, spec, learning_rate=schedule)  # or model.compile(...) yourself
    model.fit(train, steps_per_epoch=a.steps, epochs=1, shuffle=False, verbose=2,
              callbacks=[keras.callbacks.TerminateOnNaN()])
    floor, after = constant_loss(spec, prior, val), mean_loss(spec, model, val)
    print(f"{spec.name}: validation loss {after:.4f}; the best constant prediction's "
          f"{floor:.4f} (ratio {after / floor:.2f})")
    return {"constant": floor, "after": after}


if __name__ == "__main__":
    main()
