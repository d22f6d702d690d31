"""Stacked layers, as every stack of this model runs them (encoder, decoder, decoding step)."""


def stack_layers(x, layers, *, residual, dropout=None, training=None):
    """Runs `layers` one on top of the other: `dropout` on the input of every layer but the first,
    and with `residual`, each layer's input added to its output from the second layer on.

    Args:
        x: the first layer's input.
        layers: callables `x -> (output, extra)`; `extra` is what the caller keeps of each layer
            (its final states, say).
        residual: residual connections from the second layer on.
        dropout: a dropout layer, or None (decoding).
        training: passed to `dropout`.

    Returns:
        The last layer's output (plus its input, with `residual`) and the list of extras.
    """
    extras = []
    for i, layer in enumerate(layers):
        x_in = x
        if i > 0 and dropout is not None:
            x = dropout(x, training=training)
        y, extra = layer(x)
        x = y + x_in if residual and i > 0 else y
        extras.append(extra)
    return x, extras
