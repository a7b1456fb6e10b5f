"""A gradcli plugin: the seed's ``line`` Function, y = w * x + b, with its own backward.

    gradcli grad @samples/plugin_line.grad --plugin samples/line_plugin.py w=2 x=3 b=1

Every ``gradcli.autograd.Function`` subclass a plugin defines is callable in programs by its
lower-cased class name, here ``line(w, x, b)``.
"""

from gradcli.autograd import Function


class line(Function):  # noqa: N801 - the class name is the function's name in the language
    @staticmethod
    def forward(ctx, w, x, b):
        ctx.save_for_backward(w, x, b)
        return w * x + b

    @staticmethod
    def backward(ctx, grad):
        w, x, b = ctx.saved_tensors
        return grad * x, grad * w, grad
