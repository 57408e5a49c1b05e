// y[i] = y[i-1] / 2 + sum_j W[i, j] x[j] for i >= 1 (y[0] is an input):
// iteration i reads what iteration i-1 stored, so the row loop must not be
// unrolled-and-jammed even though its body looks like a matvec row.
builtin.module {
  func.func @recurrence(%W: memref<${M}x${K}x${T}>, %x: memref<${K}x${T}>, %y: memref<${M}x${T}>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %m = arith.constant ${M} : index
    %k = arith.constant ${K} : index
    %zero = arith.constant 0.0 : ${T}
    %half = arith.constant 0.5 : ${T}
    scf.for %i = %c1 to %m step %c1 {
      %prev = arith.subi %i, %c1 : index
      %yp = memref.load %y[%prev] : memref<${M}x${T}>
      %carry = arith.mulf %yp, %half : ${T}
      %acc = scf.for %j = %c0 to %k step %c1 iter_args(%a = %carry) -> (${T}) {
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
