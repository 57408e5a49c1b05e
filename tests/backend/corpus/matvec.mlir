// y = W x + b with W of shape ($M, $K): the inner loop runs over the
// unit-stride dimension of W and reduces in an iter_arg started at b[i].
builtin.module {
  func.func @matvec(%W: memref<${M}x${K}x${T}>, %x: memref<${K}x${T}>, %b: memref<${M}x${T}>, %y: memref<${M}x${T}>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %m = arith.constant ${M} : index
    %k = arith.constant ${K} : index
    scf.for %i = %c0 to %m step %c1 {
      %b_i = memref.load %b[%i] : memref<${M}x${T}>
      %acc = scf.for %j = %c0 to %k step %c1 iter_args(%a = %b_i) -> (${T}) {
        %w = memref.load %W[%i, %j] : memref<${M}x${K}x${T}>
        %xv = memref.load %x[%j] : memref<${K}x${T}>
        %p = arith.mulf %w, %xv : ${T}
        %s = arith.addf %a, %p : ${T}
        scf.yield %s : ${T}
      }
      memref.store %acc, %y[%i] : memref<${M}x${T}>
    }
    func.return
  }
}
