"""Where ``create_actor`` puts an actor among a main pool and its sub pools (xoscar's
strategies). The main pool applies them; each maps onto the runtime's placement."""


class AllocateStrategy:
    """Base of the strategies."""

    def _placement(self):
        raise NotImplementedError


class AddressSpecified(AllocateStrategy):
    """In the pool at ``address`` (the main pool's or one of its sub pools')."""

    def __init__(self, address: str):
        self.address = address

    def _placement(self):
        return ("address", self.address)


class MainPool(AllocateStrategy):
    """In the main pool."""

    def _placement(self):
        return ("here", "")


class ProcessIndex(AllocateStrategy):
    """In the pool with this index: 0 is the main pool, 1..n its sub pools."""

    def __init__(self, process_index: int):
        self.process_index = process_index

    def _placement(self):
        if self.process_index == 0:
            return ("here", "")
        return ("sub_pool", str(self.process_index - 1))


class RandomSubPool(AllocateStrategy):
    """In a sub pool picked at random."""

    def _placement(self):
        return ("random_sub_pool", "")


class RandomLabel(AllocateStrategy):
    """In a pool with this label, picked at random."""

    def __init__(self, label: str):
        self.label = label

    def _placement(self):
        return ("label", self.label)


class IdleLabel(AllocateStrategy):
    """In the first pool with this label that no other ``IdleLabel`` create holds;
    ``NoIdleSlot`` if none is free. (``mark`` is kept for xoscar's signature: the runtime
    holds a pool per label.)"""

    def __init__(self, label: str, mark=None):
        self.label = label
        self.mark = mark

    def _placement(self):
        return ("idle_label", self.label)
