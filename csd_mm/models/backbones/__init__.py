from .mctformer_vit import MCTformerViT

__all__ = ['MCTformerViT']
