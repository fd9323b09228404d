"""Adam whose updates of large variables are one pass over memory.

Keras's Adam updates a variable with about eight elementwise TensorFlow ops
(the two moments, the step, the division), each a pass over the variable.
For most models that is nothing; for the readouts of the fully connected
targets it is a large part of a step: egomotion at 64 px trains 78 heads
of 3.2 M weights (1 GB) in one program, and the optimizer's passes over
them took as long as the heads' matrix products (``bench/fused_adam.py``).
Here a variable of at least ``FUSE_FROM`` numbers is updated by one XLA
cluster that reads and writes it and its two moments in place
(``models.layers.xla_cluster``); smaller ones by the same operations as
``keras.optimizers.Adam``, so that a model without large variables trains
to the same numbers as with Keras's Adam.
"""

from __future__ import annotations

import math
import weakref

import keras
from keras import ops, saving

from taskonomy_tf.models.layers import xla_cluster

# numbers in a variable from which its update is fused: the largest kernel of
# a first-order dense job (78 heads of 3 x 3 x 16 x 16) has 180 k, a fully
# connected head's kernel 1-3 M per head (78 heads: 82-245 M)
FUSE_FROM = 1 << 20


def adam_in_place(p, m, v, g, alpha, beta_1: float, beta_2: float, epsilon: float) -> None:
    """Adam's update of variable ``p`` with gradient ``g`` (Kingma and Ba
    2015, algorithm 1, the bias corrections folded into the step size
    ``alpha``), in ``keras.optimizers.Adam``'s order: the moments ``m`` and
    ``v``, then the variable, each assigned in place."""
    m.assign_add((g - m) * (1 - beta_1))
    v.assign_add((ops.square(g) - v) * (1 - beta_2))
    p.assign_sub((m * alpha) / (ops.sqrt(v) + epsilon))


def _handle(x):
    """What a compiled TensorFlow function can take for a variable: the
    ``tf.Variable`` a Keras variable holds; on other backends (which call
    the function itself) the Keras variable."""
    if isinstance(x, keras.Variable) and keras.backend.backend() == "tensorflow":
        return x.value
    return x


@saving.register_keras_serializable(package="taskonomy_tf")
class FusedAdam(keras.optimizers.Optimizer):
    """``keras.optimizers.Adam`` (no AMSGrad), large variables updated in
    one fused pass.

    Args:
        learning_rate: a float or a ``keras.optimizers.schedules`` schedule.
        beta_1, beta_2, epsilon: as ``keras.optimizers.Adam``'s (its defaults).
        **kwargs: the base optimizer's (``clipnorm``, ``weight_decay``, ...).
    """

    def __init__(self, learning_rate=1e-3, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, name: str = "fused_adam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self._moments = {}

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        # compiled per optimizer: a compiled function traced with one model's
        # variables must not outlive them
        self._fused = xla_cluster(adam_in_place)
        # the model's variables by weak reference: a tracked attribute holding
        # them would make them the optimizer's state too (JAX then donates
        # their buffers twice)
        self._slots = [(weakref.ref(var), self.add_variable_from_reference(var, "momentum"),
                        self.add_variable_from_reference(var, "velocity")) for var in var_list]

    def _moments_of(self, variable):
        """The (first, second) moment variables of ``variable``: a Keras
        variable, or on TensorFlow the ``tf.Variable`` it holds (what the
        base optimizer passes to ``update_step``); looked up once, when the
        step is traced and every variable is initialised."""
        key = id(variable)
        if key not in self._moments:
            found = [(m, v) for ref, m, v in self._slots
                     if ref() is variable or getattr(ref(), "value", None) is variable]
            if len(found) != 1:
                raise ValueError(f"FusedAdam: variable {getattr(variable, 'name', variable)!r} "
                                 "is not one the optimizer was built with")
            self._moments[key] = found[0]
        return self._moments[key]

    def update_step(self, gradient, variable, learning_rate):
        m, v = self._moments_of(variable)
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        beta_1_power = ops.power(ops.cast(self.beta_1, dtype), step)
        beta_2_power = ops.power(ops.cast(self.beta_2, dtype), step)
        alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        update = self._fused if math.prod(variable.shape) >= FUSE_FROM else adam_in_place
        update(_handle(variable), _handle(m), _handle(v), ops.cast(gradient, dtype), alpha,
               self.beta_1, self.beta_2, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}
