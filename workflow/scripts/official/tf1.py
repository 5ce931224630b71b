"""What the TensorFlow 1 maintainer scripts (bprmf_, bert4rec_, gru4rec_, sasrec_kang205_train.py)
share: TensorFlow 2's `tf.compat.v1` installed as `tensorflow` for the official modules' imports, with
the pieces of TF 1's `tf.contrib` (gone in TF 2) that a script supplies."""

import sys
import types


def tensorflow_v1(contrib=lambda v1: {}):
    """(tf2, v1): v2 behaviour disabled; `contrib(v1)` -> the attributes of `tensorflow.contrib`."""
    import tensorflow as tf2

    v1 = tf2.compat.v1
    v1.disable_v2_behavior()
    module = types.ModuleType("tensorflow.contrib")
    for name, value in contrib(v1).items():
        setattr(module, name, value)
    v1.contrib = module
    sys.modules["tensorflow"], sys.modules["tensorflow.contrib"] = v1, module
    return tf2, v1
