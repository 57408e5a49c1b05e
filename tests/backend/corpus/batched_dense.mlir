// Y = X W^T + b for a batch: X ($B, $K), W ($M, $K), Y ($B, $M). The middle
// loop (over rows of W) is the one whose body holds the reduction.
builtin.module {
  func.func @batched(%X: memref<${B}x${K}x${T}>, %W: memref<${M}x${K}x${T}>, %b: memref<${M}x${T}>, %Y: memref<${B}x${M}x${T}>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %nb = arith.constant ${B} : index
    %m = arith.constant ${M} : index
    %k = arith.constant ${K} : index
    scf.for %n = %c0 to %nb step %c1 {
      scf.for %i = %c0 to %m step %c1 {
        %bi = memref.load %b[%i] : memref<${M}x${T}>
        %acc = scf.for %j = %c0 to %k step %c1 iter_args(%a = %bi) -> (${T}) {
          %w = memref.load %W[%i, %j] : memref<${M}x${K}x${T}>
          %xv = memref.load %X[%n, %j] : memref<${B}x${K}x${T}>
          %p = arith.mulf %w, %xv : ${T}
          %s = arith.addf %a, %p : ${T}
          scf.yield %s : ${T}
        }
        memref.store %acc, %Y[%n, %i] : memref<${B}x${M}x${T}>
      }
    }
    func.return
  }
}
